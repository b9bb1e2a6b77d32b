// BullMQ's side of jobd's bench/run, on its own redis-server.
//
//   node bench.mjs worker SOCKET CONC N SLEEP_MS RECORD_FILE TIMEOUT_MS
//       a Worker of queue "bench" with concurrency CONC and a processor
//       that does nothing (or sleeps SLEEP_MS). Prints "ready START_MS"
//       once connected (START_MS: when it began to take jobs), then exits after N completions (or TIMEOUT_MS) printing
//       "END_MS COMPLETED". RECORD_FILE ("-" = none) gets one line per job:
//       "KIND TIMESTAMP PROCESSED_ON" (ms; job.timestamp is set when the
//       job is added, processedOn when it moved to active).
//   node bench.mjs add SOCKET N BATCH RATE KIND SLEEP_MS
//       Queue.addBulk of N jobs, BATCH per call, RATE jobs/s (0 = as fast
//       as Redis takes them; paced in 5 ms ticks). Prints "START_MS END_MS".
//
// Jobs are kept after completion (BullMQ's default), as jobd keeps its jobs.
import { Queue, Worker } from 'bullmq';
import IORedis from 'ioredis';
import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const [mode, socket, ...args] = process.argv.slice(2);
const QUEUE = 'bench';

function connection() {
	return new IORedis({ path: socket, maxRetriesPerRequest: null });
}

async function worker(conc, n, sleepMs, recordFile, timeoutMs) {
	const lines = [];
	let completed = 0;
	let done;
	const finished = new Promise((resolve) => (done = resolve));
	const w = new Worker(
		QUEUE,
		async (job) => {
			if (recordFile !== '-')
				lines.push(`${job.data.k} ${job.timestamp} ${job.processedOn}`);
			if (sleepMs > 0)
				await sleep(sleepMs);
		},
		{ connection: connection(), concurrency: conc, autorun: false },
	);
	w.on('completed', () => {
		if (++completed >= n)
			done();
	});
	w.on('error', (err) => console.error(`bullmq worker: ${err.message}`));
	await w.waitUntilReady();
	const startMs = Date.now();
	w.run();
	console.log(`ready ${startMs}`);
	const timer = setTimeout(done, timeoutMs);
	await finished;
	const end = Date.now();
	clearTimeout(timer);
	if (recordFile !== '-')
		writeFileSync(recordFile, lines.join('\n') + '\n');
	console.log(`${end} ${completed}`);
	await w.close(true);
	process.exit(0);
}

async function add(n, batch, rate, kind, sleepMs) {
	const q = new Queue(QUEUE, { connection: connection() });
	await q.waitUntilReady();
	const data = sleepMs > 0 ? { k: kind, sleep_ms: sleepMs } : { k: kind };
	const start = Date.now();
	let done = 0;
	while (done < n) {
		let want = n - done;
		if (rate > 0) {
			const due = Math.min(n, Math.floor(((Date.now() - start) * rate) / 1000) + 1);
			want = due - done;
			if (want <= 0) {
				await sleep(1);
				continue;
			}
		}
		const k = Math.min(want, batch);
		const jobs = [];
		for (let i = 0; i < k; i++)
			jobs.push({ name: 'noop', data });
		await q.addBulk(jobs);
		done += k;
		if (rate > 0 && done < n)
			await sleep(5);
	}
	console.log(`${start} ${Date.now()}`);
	await q.close();
	process.exit(0);
}

if (mode === 'worker')
	await worker(Number(args[0]), Number(args[1]), Number(args[2]), args[3], Number(args[4]));
else if (mode === 'add')
	await add(Number(args[0]), Number(args[1]), Number(args[2]), args[3], Number(args[4]));
else {
	console.error('usage: bench.mjs worker SOCKET CONC N SLEEP_MS RECORD_FILE TIMEOUT_MS | add SOCKET N BATCH RATE KIND SLEEP_MS');
	process.exit(2);
}
