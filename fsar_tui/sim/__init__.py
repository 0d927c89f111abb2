"""The reference executor: fleet simulator and bulk seeding."""
