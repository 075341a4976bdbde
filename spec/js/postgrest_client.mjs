// Drives strata's /rest/v1 with the real @supabase/postgrest-js client, the
// way a new user would write it, and prints one JSON object: for each step,
// what the client returned ({ status, data, error, count }).  The busted spec
// spec/rest/30-postgrest_js_spec.lua creates the fixtures, runs this script
// and asserts on its output; nothing is asserted here.
//
//   STRATA_REST_URL=http://127.0.0.1:8080/rest/v1 STRATA_TOKEN=<jwt> [STRATA_ANON_TOKEN=<jwt>] \
//     node spec/js/postgrest_client.mjs
//
// STRATA_TOKEN is a service_role token; STRATA_ANON_TOKEN (role anon), when
// given, is sent as the apikey alone, as a browser app holding only the
// public key would.
//
// The fixture: public.rest_js_items (id serial, name text unique, qty int,
// tags text[]) holding apple 3 {fruit,red}, banana null {fruit},
// "fig, dried (x)" 7 {fruit,dried}, date 10 {}, carrot 0 {veg}; the
// functions rest_js_add(a, b) and rest_js_items_over(min_qty); the table
// agentflow.rest_js_things; public.rest_js_notes (item_id references
// rest_js_items) holding crisp and red for apple, sweet for date.
import { PostgrestClient } from '@supabase/postgrest-js'

const url = process.env.STRATA_REST_URL
const token = process.env.STRATA_TOKEN
if (!url || !token) {
  console.error('postgrest_client.mjs: set STRATA_REST_URL and STRATA_TOKEN')
  process.exit(2)
}

const client = new PostgrestClient(url, {
  headers: { apikey: token, Authorization: `Bearer ${token}` },
})

const anonToken = process.env.STRATA_ANON_TOKEN
const anon = anonToken ? new PostgrestClient(url, { headers: { apikey: anonToken } }) : null

const items = () => client.from('rest_js_items')

// Each step is a name and a function returning a postgrest-js builder.
const steps = [
  ['select_eq', () => items().select('id, name').eq('name', 'apple')],
  ['select_in', () => items().select('name').in('name', ['apple', 'fig, dried (x)', 'nothing']).order('id')],
  ['select_ilike', () => items().select('name').ilike('name', '%AN%').order('id')],
  ['select_or', () => items().select('name').or('qty.gt.5,qty.is.null').order('id')],
  ['select_not_contains', () => items().select('name').not('qty', 'is', null).contains('tags', ['fruit']).order('id')],
  ['select_match_gte_lt', () => items().select('name').match({ name: 'date' }).gte('qty', 10).lt('qty', 11)],
  ['embed_many', () => items().select('*, rest_js_notes(*)').eq('name', 'apple')
    .order('body', { referencedTable: 'rest_js_notes', ascending: false })],
  ['embed_one', () => client.from('rest_js_notes').select('body, item:rest_js_items(name)').order('id')],
  ['embed_inner', () => items().select('name, rest_js_notes!inner(body)').eq('rest_js_notes.body', 'sweet')],
  ['embed_limit', () => items().select('name, rest_js_notes(body)').eq('name', 'apple')
    .order('body', { referencedTable: 'rest_js_notes' }).limit(1, { referencedTable: 'rest_js_notes' })],
  // Null filtering on an embed, a to-many spread, ordering by a to-one
  // embed's column, a filter PostgREST's parser refuses.
  ['embed_not_null', () => items().select('name, rest_js_notes()').not('rest_js_notes', 'is', null).order('id')],
  ['embed_is_null', () => items().select('name, rest_js_notes()').is('rest_js_notes', null).order('id')],
  ['spread_many', () => items().select('name, ...rest_js_notes(body)').in('name', ['apple', 'banana']).order('id')
    .order('body', { referencedTable: 'rest_js_notes' })],
  ['order_embedded', () => client.from('rest_js_notes').select('body, item:rest_js_items(name)')
    .order('item(name)', { ascending: false }).order('id')],
  ['bad_filter', () => items().select('name').filter('qty', 'xx', '1')],
  ['order_limit', () => items().select('name, qty').order('qty', { ascending: false, nullsFirst: false }).limit(2)],
  ['order_two', () => items().select('name').order('qty', { ascending: true, nullsFirst: true }).order('name')],
  ['range', () => items().select('id').order('id').range(1, 2)],
  ['count_head', () => items().select('*', { count: 'exact', head: true })],
  ['count_range', () => items().select('id', { count: 'exact' }).order('id').range(0, 1)],
  ['count_filtered', () => items().select('id', { count: 'exact' }).gt('qty', 3)],
  ['single', () => items().select('name, qty').eq('name', 'apple').single()],
  ['single_many', () => items().select('name').single()],
  ['single_none', () => items().select('name').eq('name', 'nothing').single()],
  ['maybe_single_none', () => items().select('name').eq('name', 'nothing').maybeSingle()],
  ['maybe_single_one', () => items().select('name').eq('name', 'date').maybeSingle()],
  ['maybe_single_many', () => items().select('name').gte('qty', 3).maybeSingle()],
  ['insert_one', () => items().insert({ name: 'grape', qty: 2, tags: ['fruit'] }).select('name, qty, tags')],
  ['insert_many', () => items().insert([{ name: 'kiwi', qty: 1 }, { name: 'lime' }])],
  ['insert_single', () => items().insert({ name: 'mango', qty: 4 }).select('name').single()],
  ['insert_duplicate', () => items().insert({ name: 'apple' })],
  ['upsert_merge', () => items().upsert({ name: 'apple', qty: 30 }, { onConflict: 'name' }).select('name, qty')],
  ['upsert_ignore', () => items().upsert([{ name: 'apple', qty: 99 }, { name: 'nectarine', qty: 5 }],
    { onConflict: 'name', ignoreDuplicates: true }).select('name, qty')],
  ['update', () => items().update({ qty: 11 }).eq('name', 'grape').select('name, qty')],
  ['update_minimal', () => items().update({ tags: ['citrus'] }).in('name', ['kiwi', 'lime'])],
  ['delete', () => items().delete().eq('name', 'kiwi').select('name')],
  ['delete_unfiltered', () => items().delete()],
  ['rpc_scalar', () => client.rpc('rest_js_add', { a: 2, b: 3 })],
  ['rpc_get', () => client.rpc('rest_js_add', { a: 20, b: 22 }, { get: true })],
  ['rpc_table', () => client.rpc('rest_js_items_over', { min_qty: 3 }).select('name, qty').lt('qty', 20).order('qty', { ascending: false })],
  ['rpc_table_single', () => client.rpc('rest_js_items_over', { min_qty: 20 }).select('name').single()],
  ['rpc_unknown', () => client.rpc('rest_js_no_such_function', {})],
  ['rpc_void', () => client.rpc('rest_js_void')],
  ['rpc_count', () => client.rpc('rest_js_items_over', { min_qty: 3 }, { count: 'exact' }).select('name').order('qty').limit(1)],
  ['rpc_head', () => client.rpc('rest_js_items_over', { min_qty: 3 }, { head: true, count: 'exact' })],
  ['rpc_get_array', () => client.rpc('rest_js_sum', { arr: [1, 2, 3] }, { get: true })],
  ['like_any', () => items().select('name').likeAnyOf('name', ['app%', 'ban%']).order('name')],
  ['ilike_all', () => items().select('name').ilikeAllOf('name', ['%A%', '%E%']).order('name')],
  ['strip_nulls', () => items().select('name, qty').eq('name', 'banana').stripNulls()],
  ['csv', () => items().select('name').order('name').limit(2).csv()],
  ['max_affected', () => items().update({ qty: 1 }).gt('qty', -1).maxAffected(1)],
  // The server runs with rest_aggregates and rest_plans on.
  ['aggregate', () => items().select('total:qty.sum(), n:count()').lt('qty', 5)],
  ['explain', () => items().select('name').eq('name', 'apple').explain({ format: 'json' })],
  // Plans of a write (taken back: nothing is inserted) and of a call.
  ['explain_insert', () => items().insert({ name: 'planned only' }).explain({ format: 'json', analyze: true })],
  ['explain_rpc', () => client.rpc('rest_js_items_over', { min_qty: 3 }).explain({ format: 'json' })],
  ['schema', () => client.schema('agentflow').from('rest_js_things').select('label')],
  ...(anon ? [
    ['anon_select', () => anon.from('rest_js_items').select('name').eq('name', 'banana')],
    ['anon_embed', () => anon.from('rest_js_items').select('name, rest_js_notes(body)').eq('name', 'apple')],
    ['anon_insert', () => anon.from('rest_js_items').insert({ name: 'from anon' })],
    ['anon_rpc', () => anon.rpc('rest_js_add', { a: 1, b: 1 })],
  ] : []),
  // The representation of a write embeds too (the note is not yet among
  // apple's notes: the statement reads them as they were before it).
  ['insert_embed', () => client.from('rest_js_notes').insert({ item_id: 1, body: 'tart' })
    .select('body, item:rest_js_items(name, rest_js_notes(body))')
    .order('body', { referencedTable: 'item.rest_js_notes' })],
  ['final', () => items().select('name, qty, tags').order('name')],
]

const out = {}
for (const [name, build] of steps) {
  try {
    const { data, error, count, status } = await build()
    out[name] = { status, data: data ?? null, error: error ?? null, count: count ?? null }
  } catch (e) {
    out[name] = { status: -1, data: null, error: { message: String(e && e.stack || e) }, count: null }
  }
}
console.log(JSON.stringify(out))
