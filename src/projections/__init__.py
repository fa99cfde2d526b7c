"""storctl's read side: CloudStack-shaped tables projected from the Ledger's events.

`runner` (catch_up, status, rebuild) keeps the tables of `schema` in step with the
notification log; `queries` (through `view.reader`) answers with the CLI's JSON field
names. The tables are CloudStack's: `host`, `storage_pool`, `image_store`,
`vm_template`, `template_store_ref`, `template_spool_ref`, `volumes`, `snapshots`,
`snapshot_store_ref`, `vm_instance`, `async_job`, plus the audit `event_journal`.
"""
