// Drives strata's /auth/v1 and /rest/v1 with the real @supabase/supabase-js
// client, the way an app signs a new user up, and prints one JSON object:
// for each step, what the client returned.  The busted spec
// spec/auth/04-supabase_js_spec.lua runs it and asserts on its output;
// nothing is asserted here.
//
//   STRATA_URL=http://127.0.0.1:8080 STRATA_ANON_KEY=<anon jwt> STRATA_EMAIL=<new address> \
//     [STRATA_SERVICE_KEY=<service_role jwt>] node spec/js/supabase_client.mjs
// With STRATA_SERVICE_KEY, supabase.auth.admin.* and resetPasswordForEmail too.
import { createClient } from '@supabase/supabase-js'

const url = process.env.STRATA_URL
const anonKey = process.env.STRATA_ANON_KEY
const email = process.env.STRATA_EMAIL
if (!url || !anonKey || !email) {
  console.error('supabase_client.mjs: set STRATA_URL, STRATA_ANON_KEY and STRATA_EMAIL')
  process.exit(2)
}

// No realtime here: Node 20 has no WebSocket, and nothing connects one.
class NoWebSocket { constructor() { throw new Error('realtime is not used by this script') } }
const supabase = createClient(url, anonKey, {
  auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  realtime: { transport: NoWebSocket },
})

const err = (e) => (e ? { name: e.name, status: e.status, code: e.code, message: e.message } : null)
const out = {}

const signUp = await supabase.auth.signUp({ email, password: 'first-password', options: { data: { name: 'Grace' } } })
out.signUp = { error: err(signUp.error), user_id: signUp.data.user?.id, has_session: !!signUp.data.session,
               name: signUp.data.user?.user_metadata?.name }

const dup = await supabase.auth.signUp({ email, password: 'first-password' })
out.signUpAgain = { error: err(dup.error) }

const bad = await supabase.auth.signInWithPassword({ email, password: 'wrong-password' })
out.signInWrong = { error: err(bad.error), has_session: !!bad.data.session }

const signIn = await supabase.auth.signInWithPassword({ email, password: 'first-password' })
out.signIn = { error: err(signIn.error), user_id: signIn.data.user?.id,
               session_id: signIn.data.session ? JSON.parse(atob(signIn.data.session.access_token.split('.')[1]
                 .replace(/-/g, '+').replace(/_/g, '/'))).session_id : null }

const getUser = await supabase.auth.getUser()
out.getUser = { error: err(getUser.error), user_id: getUser.data.user?.id, email: getUser.data.user?.email }

const update = await supabase.auth.updateUser({ password: 'second-password', data: { plan: 'pro' } })
out.updateUser = { error: err(update.error), name: update.data.user?.user_metadata?.name,
                   plan: update.data.user?.user_metadata?.plan }

const before = (await supabase.auth.getSession()).data.session
const refresh = await supabase.auth.refreshSession()
out.refreshSession = { error: err(refresh.error), rotated: !!refresh.data.session &&
                       refresh.data.session.refresh_token !== before.refresh_token,
                       same_user: refresh.data.user?.id === signIn.data.user?.id }

const chat = await supabase.from('Chat').insert({ title: 'first chat', user_id: signIn.data.user?.id }).select().single()
out.insertChat = { error: err(chat.error), status: chat.status, title: chat.data?.title }

const listed = await supabase.from('Chat').select('title')
out.selectChats = { error: err(listed.error), titles: (listed.data || []).map((r) => r.title) }

const oldToken = (await supabase.auth.getSession()).data.session.access_token
const signOut = await supabase.auth.signOut()
out.signOut = { error: err(signOut.error), session_after: (await supabase.auth.getSession()).data.session }

// The token the app held before signing out, sent as it was.
const res = await fetch(`${url}/rest/v1/Chat?select=title`, {
  headers: { apikey: anonKey, Authorization: `Bearer ${oldToken}` },
})
out.oldTokenAfterSignOut = { status: res.status }

const again = await supabase.auth.signInWithPassword({ email, password: 'second-password' })
out.signInNewPassword = { error: err(again.error), has_session: !!again.data.session }

// The admin client (service_role key), as a server-side app would use it.
const serviceKey = process.env.STRATA_SERVICE_KEY
if (serviceKey) {
  const admin = createClient(url, serviceKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: { transport: NoWebSocket },
  }).auth.admin
  const adminEmail = 'admin-made-' + email
  const created = await admin.createUser({ email: adminEmail, password: 'made-by-admin', email_confirm: true,
                                           user_metadata: { team: 'ops' } })
  out.adminCreate = { error: err(created.error), email: created.data.user?.email,
                      team: created.data.user?.user_metadata?.team }
  const listed = await admin.listUsers({ page: 1, perPage: 1 })
  out.adminList = { error: err(listed.error), count: listed.data.users?.length, total: listed.data.total,
                    nextPage: listed.data.nextPage, has_last: typeof listed.data.lastPage === 'number' }
  const fetched = await admin.getUserById(created.data.user.id)
  out.adminGet = { error: err(fetched.error), email: fetched.data.user?.email }
  const updated = await admin.updateUserById(created.data.user.id, { user_metadata: { team: 'dev' } })
  out.adminUpdate = { error: err(updated.error), team: updated.data.user?.user_metadata?.team }
  const removed = await admin.deleteUser(created.data.user.id)
  out.adminDelete = { error: err(removed.error) }
  const gone = await admin.getUserById(created.data.user.id)
  out.adminGetDeleted = { error: err(gone.error) }
  const reset = await supabase.auth.resetPasswordForEmail(email)
  out.resetPassword = { error: err(reset.error) }
}

console.log(JSON.stringify(out))
