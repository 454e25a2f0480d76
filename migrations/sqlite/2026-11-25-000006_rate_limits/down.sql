DROP TABLE sign_in_failure;
DROP TABLE rate_limit;
