"""The `fullchain` command line: a thin layer over the SDK that parses, calls and prints."""
