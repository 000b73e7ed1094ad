"""outreach: a nurture and multichannel outreach engine for B2B sales."""

__version__ = "0.1.0"
