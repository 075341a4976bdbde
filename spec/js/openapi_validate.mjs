// Fetches strata's OpenAPI document (GET /rest/v1/) and validates it as
// Swagger 2.0 with @apidevtools/swagger-parser, printing one JSON object:
// { status, contentType, valid, error, doc }.  The busted spec
// spec/rest/31-openapi_spec.lua runs it and asserts on its output.
//
//   STRATA_REST_URL=http://127.0.0.1:8080/rest/v1/ STRATA_TOKEN=<jwt> [STRATA_PROFILE=schema] \
//     node spec/js/openapi_validate.mjs
import SwaggerParser from '@apidevtools/swagger-parser'

const url = process.env.STRATA_REST_URL
const token = process.env.STRATA_TOKEN
const headers = { Accept: 'application/openapi+json' }
if (token) Object.assign(headers, { apikey: token, Authorization: `Bearer ${token}` })
if (process.env.STRATA_PROFILE) headers['Accept-Profile'] = process.env.STRATA_PROFILE

const res = await fetch(url, { headers })
const text = await res.text()
const out = { status: res.status, contentType: res.headers.get('content-type'), valid: false, error: null, doc: null }
try {
  out.doc = JSON.parse(text)
  // validate() dereferences in place: give it a copy.
  await SwaggerParser.validate(structuredClone(out.doc))
  out.valid = true
} catch (e) {
  out.error = String(e && e.message || e)
}
console.log(JSON.stringify(out))
