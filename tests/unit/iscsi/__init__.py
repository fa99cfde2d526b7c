"""The iscsi provider, without the lab: argv tables and a fake tgtd."""
