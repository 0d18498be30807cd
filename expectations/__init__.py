"""Great Expectations suites, kept as JSON files, and the runner that splits pass from fail."""
