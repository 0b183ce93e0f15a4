DROP TABLE poll_leases;
