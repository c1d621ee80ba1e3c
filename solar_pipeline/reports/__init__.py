"""Reports for owners, generated from the energy tables: the energy dashboard page."""
