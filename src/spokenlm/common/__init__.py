"""Small shared helpers: errors, JSONL and atomic files, options-to-CLI, progress, devices."""
