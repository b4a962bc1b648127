"""The package version, in a module of its own so that any module can name it without
importing the package (as the User-Agent the SWF clients send does)."""

VERSION = "0.1.0.dev0"
