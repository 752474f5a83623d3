"""Standard exports of the station's data: Camtrap DP 1.0.2, MegaDetector batch output 1.6, and CSV."""
