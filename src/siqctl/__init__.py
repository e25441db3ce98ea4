"""siqctl: the command line people and scripts use to work with siq's incidents."""
