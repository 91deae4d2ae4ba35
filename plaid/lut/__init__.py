"""Latency lookup tables: measured unit latencies stored per target+runtime+settings.

`plaid.lut.latency.Latency` is the value object (median, p90, spread, runs);
`plaid.lut.store.LatencyTable` is the SQLite file that holds one table. Nothing in
this package imports torch or other heavy stacks.
"""
