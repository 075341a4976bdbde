-- strata.rest.relations: which relationship an embedded resource names,
-- chosen as PostgREST's findRel chooses it (Plan.hs), from the catalog's
-- foreign keys only (a view carries its tables' keys): many-to-one,
-- one-to-many, one-to-one, and many-to-many through a junction table
-- (SchemaCache.hs addM2MRels: a table with two foreign keys that are not
-- unique on their own, whose columns together are part of its primary
-- key).  None is 400 PGRST200; several are 300 PGRST201 listing the
-- candidates with PostgREST's wording.

local raise = require("strata.rest.errors").raise

local concat, format, ipairs = table.concat, string.format, ipairs

local M = {}

local function zip(a, b)
  local out = {}
  for i, x in ipairs(a) do out[i] = { x, b[i] } end
  return out
end

local function subset(list, of)
  local set = {}
  for _, c in ipairs(of) do set[c] = true end
  for _, c in ipairs(list) do if not set[c] then return false end end
  return true
end

-- The many-to-many relationships of t: fk1 (junction -> t) paired with
-- every other non-unique key fk2 of the same junction whose columns and
-- fk1's are all in the junction's primary key.  src pairs t's column with
-- the junction's, dst the junction's with the foreign table's.
local function many_to_many(t, tables, rels)
  for _, fk1 in ipairs(t.referenced_by or {}) do
    local jt = tables[fk1.table_name]
    for _, fk2 in ipairs(jt and not fk1.is_unique and jt.fks or {}) do
      if fk2.name ~= fk1.name and not fk2.is_unique and tables[fk2.ref_table]
          and subset(fk1.columns, jt.pk) and subset(fk2.columns, jt.pk) then
        rels[#rels + 1] = { dir = "m2m", to_one = false, card = "many-to-many", junction = jt,
          constraint = fk1.name, constraint2 = fk2.name, foreign = tables[fk2.ref_table],
          src = zip(fk1.ref_columns, fk1.columns), dst = zip(fk2.columns, fk2.ref_columns),
          self = fk2.ref_table == t.name }
      end
    end
  end
end

-- Every relationship of table t: many-to-one through its foreign keys,
-- one-to-many through those pointing at it (one-to-one when the
-- referencing columns are a unique key), many-to-many through junctions.
-- cols pairs t's column with the foreign table's; a self-referencing key
-- gives one of each.
local function relationships(t, tables)
  local rels = {}
  for _, fk in ipairs(t.fks or {}) do
    rels[#rels + 1] = { dir = "m2o", to_one = true, card = fk.is_unique and "one-to-one" or "many-to-one",
      constraint = fk.name, foreign = tables[fk.ref_table], cols = zip(fk.columns, fk.ref_columns),
      self = fk.ref_table == t.name, foreign_is_view = fk.ref_is_view }
  end
  for _, fk in ipairs(t.referenced_by or {}) do
    rels[#rels + 1] = { dir = "o2m", to_one = fk.is_unique, card = fk.is_unique and "one-to-one" or "one-to-many",
      constraint = fk.name, foreign = tables[fk.table_name], cols = zip(fk.ref_columns, fk.columns),
      self = fk.table_name == t.name, foreign_is_view = fk.is_view }
  end
  many_to_many(t, tables, rels)
  return rels
end

-- t's column (i = 1) or the foreign table's (i = 2) of a one-column key.
local function single(rel, i)
  return rel.cols and #rel.cols == 1 and rel.cols[1][i] or nil
end

-- PostgREST's findRel: the target names the foreign table (or, without a
-- hint, the constraint or t's column); the hint names the constraint, a
-- column of either side or a many-to-many's junction.  A self-reference is
-- one-to-many by the table's name (hint: the referencing column) and
-- many-to-one by the column's; a many-to-many one never matches (PostgREST
-- leaves it out too).  A view (whose relationships are its tables' keys
-- again, under the same constraint names) is named by its name only, as in
-- PostgREST: otherwise `owner_id(*)` would become ambiguous the moment a
-- view over the referenced table exists.
local function matches(rel, target, hint)
  local by_key = not rel.foreign_is_view
  if rel.self then
    if rel.dir == "m2m" then return false end
    if hint == nil then
      return (target == rel.foreign.name and rel.dir == "o2m")
        or (by_key and rel.dir == "m2o" and single(rel, 1) == target)
    end
    return target == rel.foreign.name and rel.dir == "o2m" and single(rel, 2) == hint
  end
  if rel.dir == "m2m" then return target == rel.foreign.name and (hint == nil or hint == rel.junction.name) end
  if hint == nil then
    return target == rel.foreign.name or (by_key and (target == rel.constraint or single(rel, 1) == target))
  end
  return target == rel.foreign.name and (hint == rel.constraint or hint == single(rel, 1) or hint == single(rel, 2))
end

local function columns_of(pairs, i)
  local out = {}
  for k, c in ipairs(pairs) do out[k] = c[i] end
  return "(" .. concat(out, ", ") .. ")"
end

-- PostgREST's compressedRel wording of one candidate.
local function describe(t, rel)
  if rel.dir == "m2m" then
    return format("%s using %s%s and %s%s", rel.junction.name, rel.constraint, columns_of(rel.src, 2), rel.constraint2,
      columns_of(rel.dst, 1))
  end
  return format("%s using %s%s and %s%s", rel.constraint, t.name, columns_of(rel.cols, 1), rel.foreign.name,
    columns_of(rel.cols, 2))
end

local function ambiguous(t, item, found)
  local details, hints = {}, {}
  for i, rel in ipairs(found) do
    details[i] = { cardinality = rel.card, embedding = t.name .. " with " .. rel.foreign.name,
      relationship = describe(t, rel) }
    hints[i] = format("'%s!%s'", rel.foreign.name, rel.dir == "m2m" and rel.junction.name or rel.constraint)
  end
  raise(300, "PGRST201", format("Could not embed because more than one relationship was found for '%s' and '%s'",
    t.name, item.name), details, format("Try changing '%s' to one of the following: %s. Find the desired "
    .. "relationship in the 'details' key.", item.name, concat(hints, ", ")))
end

--- The one relationship of t (in tables, its schema's) that embed item
-- { name, hint } names; raises PGRST200 / PGRST201 otherwise.
function M.find(t, tables, item)
  -- A computed relationship named so prevails, as in PostgREST.
  for _, cr in ipairs(t.computed_rels or {}) do
    if cr.fn.name == item.name and item.hint == nil then
      return { dir = "computed", fn = cr.fn, foreign = cr.foreign, to_one = cr.to_one,
        card = cr.to_one and "many-to-one" or "one-to-many" }
    end
  end
  local found = {}
  for _, rel in ipairs(relationships(t, tables)) do
    if rel.foreign and matches(rel, item.name, item.hint) then found[#found + 1] = rel end
  end
  if #found == 1 then return found[1] end
  if #found > 1 then ambiguous(t, item, found) end
  raise(400, "PGRST200", format("Could not find a relationship between '%s' and '%s' in the schema cache", t.name,
    item.name), format("Searched for a foreign key relationship between '%s' and '%s'%s in the schema '%s', but no "
    .. "matches were found.", t.name, item.name, item.hint and format(" using the hint '%s'", item.hint) or "",
    t.schema))
end

return M
