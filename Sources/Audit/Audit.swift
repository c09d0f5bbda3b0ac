// Audit trail: see DESIGN.md §8.
