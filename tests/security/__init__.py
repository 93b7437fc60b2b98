"""Security regression tests (issue 13): one module per guarantee the README's security section lists."""
