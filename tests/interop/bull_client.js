'use strict';
// The Node side of the Bull interop test (tests/interop/bull_interop.sh): a
// real bull@4.16.5 producer, workers and getJobCounts() against postd's queue.
//
//   node bull_client.js produce OUT.json N N_OLD [FIXED_BACKOFF_MS]
//   node bull_client.js fail-once PRODUCED.json
//   node bull_client.js verify-persisted EXPECTED.json ROWS.json [EARLIER.json]
//   node bull_client.js work-one JOB_ID CONTENT USER_ID OUT_POST_ID
//   node bull_client.js counts POSTD_URL EXPECTED_COMPLETED
//
// `fail-once` is the old Node worker that failed the first attempt of the
// jobs of the counter-reset phase (after the queue's keys were deleted, so
// their ids start over at 1) before postd replaced it; `verify-persisted`
// then checks postd wrote them as new rows beside the earlier jobs' rows
// (EARLIER.json), each with the id postd derives for a job without
// data.postId: UUIDv5 in LEGACY_NAMESPACE of "bull:<queue>:<jobId>@<timestamp>".
//
// Environment: REDIS_HOST, REDIS_PORT, QUEUE_NAME (Bull's default prefix
// "bull" is used, as the old service did), POSTD_TOKEN and POSTD_AUTHOR for
// `counts`. Prints "interop: ..." lines; exits 1 on any mismatch, with a
// message saying what differed. Every wait is bounded.

const crypto = require('crypto');
const fs = require('fs');
const Queue = require('bull');

const JOB_NAME = 'create-post';
const OLD_OPTS = {attempts: 3, backoff: {type: 'exponential', delay: 1000}};
// The namespace of the ids postd derives for jobs that carry no data.postId.
const LEGACY_NAMESPACE = '798ee318-d2d8-414b-a41c-a2222ebc8a60';
const PREFIX = 'bull'; // Bull's default, postd's QUEUE_PREFIX in the test
const FAIL_ONCE_REASON = 'interop: first attempt failed in the old Node worker';

function queue() {
  return new Queue(process.env.QUEUE_NAME, {
    redis: {host: process.env.REDIS_HOST, port: Number(process.env.REDIS_PORT)},
  });
}

class Mismatch extends Error {}

function fail(msg) {
  throw new Mismatch(msg);
}

function expectEqual(what, actual, expected) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) fail(`${what}: got ${a}, expected ${e}`);
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

// Resolves with fn()'s first truthy value; fails after `ms` with `what`.
async function waitFor(what, ms, fn) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) fail(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

function withTimeout(what, ms, promise) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Mismatch(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function postData(content, userId, fileUrls = []) {
  return {postData: {content}, userId, fileUrls};
}

function log(msg) {
  process.stdout.write(`interop: ${msg}\n`);
}

function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8') || 'null');
}

// RFC 4122 name-based UUID, version 5 (SHA-1): the hash of the namespace's 16
// bytes and the UTF-8 name, cut to 16 bytes, version 5 and variant 10 set.
function uuidV5(namespace, name) {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  if (ns.length !== 16) throw new Error(`bad UUID namespace ${namespace}`);
  const b = crypto.createHash('sha1').update(ns).update(Buffer.from(name, 'utf8')).digest().subarray(0, 16);
  b[6] = (b[6] & 0x0f) | 0x50;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// What postd names a job without data.postId, and the row id it derives.
function legacyName(jobId, timestamp) {
  return `${PREFIX}:${process.env.QUEUE_NAME}:${jobId}@${timestamp}`;
}
function legacyPostId(jobId, timestamp) {
  return uuidV5(LEGACY_NAMESPACE, legacyName(jobId, timestamp));
}

// N jobs with the old service's attempts/backoff, plus N_OLD with exactly its
// options ({priority: 1, removeOnComplete: true}: in the `priority` zset, hash
// deleted on completion). With FIXED_BACKOFF_MS, the N jobs have
// {attempts: 3, backoff: {type: 'fixed', delay: FIXED_BACKOFF_MS}} instead.
// Writes what was added to OUT.json, each job's id and timestamp (ms, Bull's
// job.timestamp) included. Contents are unique across runs (pid, tag).
async function produce(q, [out, n, nOld, fixedBackoff]) {
  const jobs = [];
  const run = `${process.pid}`;
  const fixed = fixedBackoff !== undefined;
  const opts = fixed ? {attempts: 3, backoff: {type: 'fixed', delay: Number(fixedBackoff)}} : OLD_OPTS;
  const tag = fixed ? 'retried ' : '';
  for (let i = 0; i < Number(n) + Number(nOld); i++) {
    const old = i >= Number(n);
    // JSON escaping, multi-byte UTF-8 and a newline go through both sides.
    const content = `interop ${tag}${run} #${i}: "quoted" \\ ünïcødé ✓ 🚀` + (i % 7 === 0 ? '\nsecond line' : '');
    const userId = `node-user-${i % 5}`;
    const fileUrls = i % 10 === 0 ? [`https://cdn.example.com/${i}.png`] : [];
    jobs.push({content, userId, fileUrls, removeOnComplete: old,
               opts: old ? {...OLD_OPTS, priority: 1, removeOnComplete: true} : opts});
  }
  const added = await Promise.all(
    jobs.map(j => q.add(JOB_NAME, postData(j.content, j.userId, j.fileUrls), j.opts)));
  added.forEach((job, i) => {
    if (!(job.timestamp > 0)) fail(`job ${job.id}: Bull gave it no timestamp (${job.timestamp})`);
    jobs[i].jobId = String(job.id);
    jobs[i].timestamp = job.timestamp;
    delete jobs[i].opts;
  });
  fs.writeFileSync(out, JSON.stringify(jobs));
  log(`Node producer added ${jobs.length} ${JOB_NAME} jobs, ids ${jobs[0].jobId}..${jobs[jobs.length - 1].jobId}` +
      (fixed ? ` (attempts 3, fixed backoff ${Number(fixedBackoff)} ms)` : '') +
      (Number(nOld) > 0 ? ` (${nOld} with priority 1 + removeOnComplete)` : ''));
}

// The old Node worker, stopped after it failed the first attempt of every
// job in PRODUCED.json: each waits in `delayed` for its retry (attemptsMade
// 1, failedReason FAIL_ONCE_REASON) when it closes. Records that in
// PRODUCED.json (failedAttempts, failedReason) for verify-persisted.
async function failOnce(q, [producedFile]) {
  const jobs = readJson(producedFile);
  const want = new Set(jobs.map(j => j.jobId));
  // Bull's delay timer would move the retries back to `wait` once their
  // backoff ends and this very worker would take them again; however slow
  // the machine, the retries must stay postd's to run: this worker never
  // promotes delayed jobs (updateDelayTimer is all that would).
  q.updateDelayTimer = () => Promise.resolve();
  const attempts = new Map();
  const unexpected = [];
  const failed = new Set();
  const allFailed = new Promise((resolve, reject) => {
    q.on('failed', (job, err) => {
      const id = String(job.id);
      if (!want.has(id) || err.message !== FAIL_ONCE_REASON) {
        reject(new Mismatch(`job ${id} failed in the Node worker: ${err.message}`));
        return;
      }
      failed.add(id);
      if (failed.size === want.size) resolve();
    });
    q.on('error', err => reject(err));
  });
  q.process(JOB_NAME, want.size, async job => {
    const id = String(job.id);
    attempts.set(id, (attempts.get(id) || 0) + 1);
    if (!want.has(id)) {
      unexpected.push(id);
      throw new Error(`interop: unexpected job ${id}`);
    }
    if (attempts.get(id) > 1 || job.attemptsMade !== 0) {
      throw new Error(`interop: job ${id} came back to the Node worker ` +
                      `(attempt ${attempts.get(id)}, attemptsMade ${job.attemptsMade})`);
    }
    throw new Error(FAIL_ONCE_REASON);
  });
  await withTimeout(`the Node worker to fail the first attempt of all ${want.size} jobs ` +
                    `(failed so far: ${[...failed].join(', ') || 'none'})`, 20000, allFailed);
  await q.pause(true, true); // this worker takes nothing more
  if (unexpected.length) fail(`the Node worker received jobs it was not given: ${unexpected.join(', ')}`);
  for (const e of jobs) {
    const job = await waitFor(`job ${e.jobId} to wait in delayed with attemptsMade 1`, 10000, async () => {
      const j = await q.getJob(e.jobId);
      return j && j.attemptsMade === 1 && (await j.getState()) === 'delayed' ? j : null;
    });
    expectEqual(`job ${e.jobId}: failedReason after the failed attempt`, job.failedReason, FAIL_ONCE_REASON);
    expectEqual(`job ${e.jobId}: attempts the Node worker made`, attempts.get(e.jobId), 1);
    e.failedAttempts = 1;
    e.failedReason = FAIL_ONCE_REASON;
  }
  const counts = await q.getJobCounts();
  expectEqual('getJobCounts() after the Node worker failed the first attempts', counts,
    {waiting: 0, active: 0, completed: 0, failed: 0, delayed: jobs.length, paused: 0});
  fs.writeFileSync(producedFile, JSON.stringify(jobs));
  log(`Node Bull worker failed the first attempt of jobs ${jobs.map(j => j.jobId).join(', ')}: ` +
      `all ${jobs.length} wait in delayed with attemptsMade 1`);
}

// What Bull says of job `e` (for a message about its missing row).
async function bullView(q, e, rowsById) {
  const job = await q.getJob(e.jobId);
  if (!job) return 'its hash is gone from Redis';
  let rv = job.returnvalue;
  if (typeof rv === 'string') { try { rv = JSON.parse(rv); } catch { /* as is */ } }
  let msg = `Bull has it ${await job.getState()} with attemptsMade ${job.attemptsMade}, ` +
            `timestamp ${job.timestamp}, returnvalue ${JSON.stringify(rv)}`;
  if (job.failedReason) msg += `, failedReason ${JSON.stringify(job.failedReason)}`;
  const other = rv && rowsById.get(rv.postId);
  if (other) {
    msg += `; that postId is the row of job ${other.jobId} with content ${JSON.stringify(other.content)}` +
           ' (another job of the same id: postd took one job for the other)';
  }
  return msg;
}

// Every job in EXPECTED.json (and EARLIER.json) is one row with its content,
// jobId, author and files, and the id postd derives for a job without
// data.postId (legacyPostId); contents are unique, jobIds need not be (the
// ids of EXPECTED.json may repeat those of EARLIER.json after a counter
// reset). Each kept job of EXPECTED.json is `completed` in Bull with
// returnvalue.postId = the row's id and the attemptsMade and failedReason
// its failed attempts left (fail-once), none for the others; its
// removeOnComplete jobs are gone from Redis. EARLIER.json's jobs are no
// longer in Redis: only their rows are checked.
async function verifyPersisted(q, [expectedFile, rowsFile, earlierFile]) {
  expectEqual('uuidV5 of the RFC 4122 example (DNS namespace, "www.example.com")',
    uuidV5('6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'www.example.com'), '2ed6657d-e927-568b-95e1-2665a8aea6a2');
  const expected = readJson(expectedFile);
  const earlier = earlierFile ? readJson(earlierFile) : [];
  const rows = readJson(rowsFile) || [];
  const byContent = new Map();
  for (const row of rows) {
    const dup = byContent.get(row.content);
    if (dup) {
      fail(`content ${JSON.stringify(row.content)} was persisted twice: rows ${dup.id} (jobId ${dup.jobId}) ` +
           `and ${row.id} (jobId ${row.jobId})`);
    }
    byContent.set(row.content, row);
  }
  const byId = new Map(rows.map(r => [r.id, r]));
  const all = [...earlier.map(e => ({...e, earlier: true})), ...expected];
  for (const e of all) {
    const what = `${e.earlier ? 'earlier ' : ''}job ${e.jobId} (timestamp ${e.timestamp})`;
    const row = byContent.get(e.content);
    if (!row) {
      fail(`${what}, added by the Node producer, has no "Post" row with its content ${JSON.stringify(e.content)}` +
           (e.earlier ? '' : `; ${await bullView(q, e, byId)}`));
    }
    expectEqual(`${what}: row jobId`, row.jobId, e.jobId);
    expectEqual(`${what}: row authorId`, row.authorId, e.userId);
    expectEqual(`${what}: row images`, row.images, e.fileUrls);
    expectEqual(`${what}: row id (UUIDv5 of "${legacyName(e.jobId, e.timestamp)}")`,
      row.id, legacyPostId(e.jobId, e.timestamp));
  }
  const contents = new Set(all.map(e => e.content));
  const extra = rows.filter(r => !contents.has(r.content));
  if (extra.length) {
    fail(`"Post" holds ${extra.length} row(s) no Node producer added, e.g. ${JSON.stringify(extra[0])}`);
  }
  expectEqual('number of "Post" rows', rows.length, all.length);
  // postd commits the rows before it marks the jobs completed: poll.
  for (const e of expected) {
    const row = byContent.get(e.content);
    if (e.removeOnComplete) {
      await waitFor(`removeOnComplete job ${e.jobId}'s hash to be deleted`, 10000,
        async () => (await q.getJob(e.jobId)) === null);
      continue;
    }
    const job = await q.getJob(e.jobId);
    if (!job) fail(`job ${e.jobId}: hash gone from Redis, but it was added without removeOnComplete`);
    let last;
    const state = await waitFor(`job ${e.jobId} to be completed (its row ${row.id} is written)`, 10000, async () => {
      last = await job.getState();
      return last === 'completed' ? last : null;
    }).catch(err => fail(`${err.message}; its state stayed ${last}`));
    expectEqual(`job ${e.jobId}: state`, state, 'completed');
    const fresh = await q.getJob(e.jobId);
    let rv = fresh.returnvalue;
    if (typeof rv === 'string') rv = JSON.parse(rv);
    if (!rv || typeof rv !== 'object') fail(`job ${e.jobId}: returnvalue ${JSON.stringify(fresh.returnvalue)} is not an object`);
    expectEqual(`job ${e.jobId}: returnvalue.postId (the row's id)`, rv.postId, row.id);
    expectEqual(`job ${e.jobId}: timestamp in its hash (the one its id derives from)`, fresh.timestamp, e.timestamp);
    if (!fresh.finishedOn) fail(`job ${e.jobId}: completed without finishedOn`);
    // Bull 4 counts failed attempts only (moveToFinished leaves attemptsMade
    // and failedReason as the last failure left them).
    expectEqual(`job ${e.jobId}: attemptsMade after completion`, fresh.attemptsMade, e.failedAttempts || 0);
    if (e.failedReason) {
      expectEqual(`job ${e.jobId}: failedReason (kept from its failed attempt)`, fresh.failedReason, e.failedReason);
    } else if (fresh.failedReason) {
      fail(`job ${e.jobId}: completed with failedReason ${JSON.stringify(fresh.failedReason)}`);
    }
  }
  const prio = await q.client.zcard(q.toKey('priority'));
  expectEqual('jobs left in the priority zset', prio, 0);
  const counts = await q.getJobCounts();
  const kept = expected.filter(e => !e.removeOnComplete).length;
  expectEqual('getJobCounts() after postd processed the Node jobs', counts,
    {waiting: 0, active: 0, completed: kept, failed: 0, delayed: 0, paused: 0});
  const retried = expected.filter(e => e.failedAttempts).length;
  log(`all ${expected.length} Node jobs persisted once with UUIDv5 ids; ${kept} completed with ` +
      `returnvalue.postId = row id (${retried} after a failed attempt), ${expected.length - kept} removed ` +
      `on completion` + (earlier.length ? `; the ${earlier.length} rows of the earlier jobs unchanged` : ''));
}

// A Node Bull worker processes the job postd queued.
async function workOne(q, [jobId, content, userId, outPostId]) {
  const postId = `node-worker-${process.pid}`;
  const seen = [];
  const done = new Promise((resolve, reject) => {
    q.on('completed', (job, result) => { if (String(job.id) === jobId) resolve(result); });
    q.on('failed', (job, err) => reject(new Mismatch(`Node worker failed job ${job.id}: ${err.message}`)));
    q.on('error', err => reject(err));
  });
  q.process(JOB_NAME, async job => {
    seen.push(String(job.id));
    if (String(job.id) !== jobId) throw new Error(`unexpected job ${job.id} (wanted ${jobId})`);
    expectEqual('job name', job.name, JOB_NAME);
    const d = job.data;
    if (!d || typeof d !== 'object' || !d.postData) fail(`job ${jobId}: data ${JSON.stringify(d)} is not in the old service's shape`);
    expectEqual(`job ${jobId}: data.postData.content`, d.postData.content, content);
    expectEqual(`job ${jobId}: data.userId`, d.userId, userId);
    if (!Array.isArray(d.fileUrls)) fail(`job ${jobId}: data.fileUrls ${JSON.stringify(d.fileUrls)} is not an array`);
    expectEqual(`job ${jobId}: opts.attempts`, job.opts.attempts, 3);
    if (!(job.timestamp > 0)) fail(`job ${jobId}: no timestamp`);
    return {postId};
  });
  await withTimeout(`a Node Bull worker to complete job ${jobId}`, 20000, done);
  const job = await q.getJob(jobId);
  if (!job) fail(`job ${jobId}: hash gone after the Node worker completed it`);
  expectEqual(`job ${jobId}: state after the Node worker`, await job.getState(), 'completed');
  expectEqual(`job ${jobId}: returnvalue`, job.returnvalue, {postId});
  expectEqual('jobs the Node worker received', seen, [jobId]);
  fs.writeFileSync(outPostId, postId);
  log(`Node Bull worker processed postd's job ${jobId} (content and userId as posted)`);
}

async function http(url, opts = {}) {
  const res = await fetch(url, {...opts, signal: AbortSignal.timeout(5000)});
  const text = await res.text();
  let body;
  try { body = JSON.parse(text); } catch { body = text; }
  return {status: res.status, body};
}

// Jobs in every state, then getJobCounts() must equal postd's /health/queue.
async function counts(q, [url, expectedCompleted]) {
  const token = process.env.POSTD_TOKEN;
  const author = process.env.POSTD_AUTHOR;
  let releaseHold;
  const hold = new Promise(r => { releaseHold = r; });
  const events = {failed: new Map(), active: new Map()};
  const waitEvent = (kind, id) => new Promise(resolve => {
    const check = () => (events[kind].has(id) ? resolve() : setTimeout(check, 50));
    check();
  });
  q.on('failed', job => events.failed.set(String(job.id), true));
  q.on('active', job => events.active.set(String(job.id), true));
  q.process(JOB_NAME, 1, async job => {
    if (job.data.interop === 'fail') throw new Error('interop: deliberate failure');
    if (job.data.interop === 'hold') { await hold; return {postId: 'held'}; }
    throw new Error(`interop: unexpected job ${job.id}`);
  });

  const data = (tag, extra = {}) => ({...postData(`counts ${tag}`, author), ...extra});
  const failed = await q.add(JOB_NAME, data('failed', {interop: 'fail'}), {attempts: 1});
  await withTimeout(`job ${failed.id} to fail in the Node worker`, 10000, waitEvent('failed', String(failed.id)));
  const held = await q.add(JOB_NAME, data('active', {interop: 'hold'}), OLD_OPTS);
  await withTimeout(`job ${held.id} to be active in the Node worker`, 10000, waitEvent('active', String(held.id)));
  const waiting = [];
  for (let i = 0; i < 3; i++) waiting.push(await q.add(JOB_NAME, data(`waiting ${i}`), OLD_OPTS));
  const delayed = await q.add(JOB_NAME, data('delayed'), {...OLD_OPTS, delay: 60000});
  for (let i = 0; i < 2; i++) {
    const r = await http(`${url}/v1/post/create`, {
      method: 'POST',
      headers: {authorization: `Bearer ${token}`, 'content-type': 'application/json'},
      body: JSON.stringify({content: `counts via postd ${i}`}),
    });
    if (r.status !== 202) fail(`POST /v1/post/create: status ${r.status} ${JSON.stringify(r.body)}`);
  }

  const expected = {waiting: 5, active: 1, completed: Number(expectedCompleted), failed: 1, delayed: 1, paused: 0};
  const bull = await q.getJobCounts();
  expectEqual('getJobCounts() after setting up the states', bull, expected);

  // postd reads Node's jobs as Bull does (GET /v1/post/jobs/:id, the author's).
  const states = [[failed.id, 'failed'], [held.id, 'active'], [waiting[0].id, 'waiting'], [delayed.id, 'delayed']];
  for (const [id, state] of states) {
    const r = await http(`${url}/v1/post/jobs/${id}`, {headers: {authorization: `Bearer ${token}`}});
    if (r.status !== 200) fail(`GET /v1/post/jobs/${id}: status ${r.status} ${JSON.stringify(r.body)}`);
    expectEqual(`GET /v1/post/jobs/${id} status (Bull: ${state})`, r.body.status, state);
    if (state === 'failed') {
      expectEqual(`GET /v1/post/jobs/${id} failedReason`, r.body.failedReason, 'interop: deliberate failure');
      expectEqual(`GET /v1/post/jobs/${id} attemptsMade`, r.body.attemptsMade, 1);
    }
  }

  // The monitor refreshes every 500 ms: poll until it agrees.
  const fields = ['waiting', 'active', 'completed', 'failed', 'delayed'];
  let last;
  const deadline = Date.now() + 5000;
  for (;;) {
    const b = await q.getJobCounts();
    const r = await http(`${url}/health/queue`);
    last = {bull: b, postd: r.body};
    if (r.status === 200 && fields.every(f => r.body[f] === b[f])) break;
    if (Date.now() > deadline) {
      fail(`/health/queue does not agree with Queue#getJobCounts() after 5 s: ` +
           `postd ${r.status} ${JSON.stringify(r.body)}, Bull ${JSON.stringify(b)}`);
    }
    await sleep(200);
  }
  expectEqual('/health/queue queue', last.postd.queue, process.env.QUEUE_NAME);
  expectEqual('/health/queue total', last.postd.total, last.bull.waiting + last.bull.active + last.bull.delayed);
  log(`/health/queue agrees with Queue#getJobCounts(): ${JSON.stringify(last.postd)}`);

  await q.pause(true, true); // this worker takes nothing more
  releaseHold();
}

async function main() {
  const [cmd, ...args] = process.argv.slice(2);
  const commands = {produce, 'fail-once': failOnce, 'verify-persisted': verifyPersisted, 'work-one': workOne, counts};
  if (!commands[cmd]) {
    process.stderr.write(`usage: bull_client.js ${Object.keys(commands).join('|')} ...\n`);
    return 2;
  }
  const q = queue();
  let rc = 0;
  try {
    await withTimeout('Redis', 10000, q.isReady());
    await commands[cmd](q, args);
  } catch (err) {
    process.stderr.write(`interop: FAILED (${cmd}): ${err instanceof Mismatch ? err.message : err.stack}\n`);
    rc = 1;
  }
  await withTimeout('the queue to close', 5000, q.close()).catch(() => {});
  return rc;
}

main().then(rc => process.exit(rc), err => {
  process.stderr.write(`interop: FAILED: ${err.stack}\n`);
  process.exit(1);
});
