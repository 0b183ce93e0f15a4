DROP TABLE run_steps;
DROP TABLE runs;
DROP TABLE bundles;
DROP TABLE inbox;
DROP TABLE providers;
DROP TABLE admins;
