"""Benchmarks and evaluations of Wirehouse: fixture generators and timing harnesses."""
