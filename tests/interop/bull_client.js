'use strict';
// The Node side of the Bull interop test (tests/interop/bull_interop.sh): a
// real bull@4.16.5 producer, worker and getJobCounts() against postd's queue.
//
//   node bull_client.js produce OUT.json N N_OLD
//   node bull_client.js verify-persisted EXPECTED.json ROWS.json
//   node bull_client.js work-one JOB_ID CONTENT USER_ID OUT_POST_ID
//   node bull_client.js counts POSTD_URL EXPECTED_COMPLETED
//
// Environment: REDIS_HOST, REDIS_PORT, QUEUE_NAME (Bull's default prefix
// "bull" is used, as the old service did), POSTD_TOKEN and POSTD_AUTHOR for
// `counts`. Prints "interop: ..." lines; exits 1 on any mismatch, with a
// message saying what differed. Every wait is bounded.

const fs = require('fs');
const Queue = require('bull');

const JOB_NAME = 'create-post';
const OLD_OPTS = {attempts: 3, backoff: {type: 'exponential', delay: 1000}};

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

// N jobs with the old service's attempts/backoff, plus N_OLD with exactly its
// options ({priority: 1, removeOnComplete: true}: in the `priority` zset, hash
// deleted on completion). Writes what was added to OUT.json.
async function produce(q, [out, n, nOld]) {
  const jobs = [];
  const run = `${process.pid}`;
  for (let i = 0; i < Number(n) + Number(nOld); i++) {
    const old = i >= Number(n);
    // JSON escaping, multi-byte UTF-8 and a newline go through both sides.
    const content = `interop ${run} #${i}: "quoted" \\ ünïcødé ✓ 🚀` + (i % 7 === 0 ? '\nsecond line' : '');
    const userId = `node-user-${i % 5}`;
    const fileUrls = i % 10 === 0 ? [`https://cdn.example.com/${i}.png`] : [];
    const opts = old ? {...OLD_OPTS, priority: 1, removeOnComplete: true} : OLD_OPTS;
    jobs.push({content, userId, fileUrls, removeOnComplete: old, opts});
  }
  const added = await Promise.all(
    jobs.map(j => q.add(JOB_NAME, postData(j.content, j.userId, j.fileUrls), j.opts)));
  added.forEach((job, i) => { jobs[i].jobId = String(job.id); delete jobs[i].opts; });
  fs.writeFileSync(out, JSON.stringify(jobs));
  log(`Node producer added ${jobs.length} ${JOB_NAME} jobs (${nOld} with priority 1 + removeOnComplete)`);
}

// Every job the producer added is one row with its content, author and
// files; each kept job is `completed` in Bull with returnvalue.postId = the
// row's id; removeOnComplete jobs are gone from Redis.
async function verifyPersisted(q, [expectedFile, rowsFile]) {
  const expected = JSON.parse(fs.readFileSync(expectedFile, 'utf8'));
  const rows = JSON.parse(fs.readFileSync(rowsFile, 'utf8') || 'null') || [];
  const byJob = new Map();
  for (const row of rows) {
    if (byJob.has(row.jobId)) fail(`job ${row.jobId} was persisted twice (rows ${byJob.get(row.jobId).id} and ${row.id})`);
    byJob.set(row.jobId, row);
  }
  expectEqual('number of "Post" rows', rows.length, expected.length);
  for (const e of expected) {
    const row = byJob.get(e.jobId);
    if (!row) fail(`job ${e.jobId} (added by the Node producer) has no "Post" row`);
    expectEqual(`job ${e.jobId}: row content`, row.content, e.content);
    expectEqual(`job ${e.jobId}: row authorId`, row.authorId, e.userId);
    expectEqual(`job ${e.jobId}: row images`, row.images, e.fileUrls);
  }
  // postd commits the rows before it marks the jobs completed: poll.
  for (const e of expected) {
    const row = byJob.get(e.jobId);
    if (e.removeOnComplete) {
      await waitFor(`removeOnComplete job ${e.jobId}'s hash to be deleted`, 10000,
        async () => (await q.getJob(e.jobId)) === null);
      continue;
    }
    const job = await q.getJob(e.jobId);
    if (!job) fail(`job ${e.jobId}: hash gone from Redis, but it was added without removeOnComplete`);
    const state = await waitFor(`job ${e.jobId} to be completed`, 10000, async () => {
      const s = await job.getState();
      return s === 'completed' ? s : null;
    });
    expectEqual(`job ${e.jobId}: state`, state, 'completed');
    const fresh = await q.getJob(e.jobId);
    let rv = fresh.returnvalue;
    if (typeof rv === 'string') rv = JSON.parse(rv);
    if (!rv || typeof rv !== 'object') fail(`job ${e.jobId}: returnvalue ${JSON.stringify(fresh.returnvalue)} is not an object`);
    expectEqual(`job ${e.jobId}: returnvalue.postId (the row's id)`, rv.postId, row.id);
    if (!fresh.finishedOn) fail(`job ${e.jobId}: completed without finishedOn`);
    if (fresh.failedReason) fail(`job ${e.jobId}: completed with failedReason ${JSON.stringify(fresh.failedReason)}`);
  }
  const prio = await q.client.zcard(q.toKey('priority'));
  expectEqual('jobs left in the priority zset', prio, 0);
  const counts = await q.getJobCounts();
  const kept = expected.filter(e => !e.removeOnComplete).length;
  expectEqual('getJobCounts() after postd processed the Node jobs', counts,
    {waiting: 0, active: 0, completed: kept, failed: 0, delayed: 0, paused: 0});
  log(`all ${expected.length} Node jobs persisted once; ${kept} completed with returnvalue.postId = row id, ` +
      `${expected.length - kept} removed on completion`);
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
  const commands = {produce, 'verify-persisted': verifyPersisted, 'work-one': workOne, counts};
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
