"""What ecologists ask of the events: species counts, the relative abundance index with its effort,
diel activity, detection histories and camera uptime; as pages (es/en), CSV and API numbers."""
