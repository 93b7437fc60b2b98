"""Benchmarks: scripts that print tables (not timed tests). Run all: python -m tests.benchmarks"""
