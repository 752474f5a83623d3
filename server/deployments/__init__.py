"""Where each camera stood, and when: deployments (position, site, habitat, camera set-up), the records
the analysis counts effort from and the Camtrap DP export writes."""
