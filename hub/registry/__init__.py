"""The registry of platforms: ``platforms.json`` at start and admin registration at run time
(``platforms``), and what joining sends a new platform and takes from it (``onboarding``)."""
