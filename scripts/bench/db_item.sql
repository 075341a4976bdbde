\set id random(1, 100000)
select id, payload from strata_bench.bench_items where id = :id;
