-- probes: one row per named probe (`tdw probe add NAME SPEC`).
-- grain: probe
-- Question: which named sets of inputs exist, and how are they defined?
-- Columns: probe (its name), spec (grid, train, test, sample:N, a list like 4+29,17+3, or a
--          predicate over a, b and p)
create or replace view probes as
select name as probe, spec from catalog_probes;
