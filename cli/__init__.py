"""storctl's command line: click commands, one module per noun."""
