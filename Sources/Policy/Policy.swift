// Policy engine: see DESIGN.md §4.
