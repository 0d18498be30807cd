"""One parser per page layout; each takes decoded text and returns an Article or a Rejection."""
