DROP TABLE mg_routes;
DROP TABLE mg_replies;
