"""Cross-stage commands: resynthesis, spoken continuation, and the end-to-end demo."""
