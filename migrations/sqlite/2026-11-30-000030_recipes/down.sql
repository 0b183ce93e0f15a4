DROP TABLE hook_deliveries;
