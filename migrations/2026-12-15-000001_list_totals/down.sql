-- The table stays: the triggers installed at start write to it until a start of the older
-- release reinstalls its own, which forgetting the definitions here makes it do.
DELETE FROM list_count_definitions;
