"""The toolkit that runs the tools."""
