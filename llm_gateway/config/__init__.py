"""The configuration: its typed schema and the file store that guards it."""
