import type { Cluster, Redis } from 'ioredis';
import { ReplyError } from 'ioredis';
import {
  AbortError,
  CostAboveBurstError,
  QueueFullError,
  RedisUnavailableError,
  ThrottleTimeoutError,
  ThrottlerClosedError,
} from './errors/index.js';
import type { Keys } from './keys.js';
import type { EventHub, ThrottleEvent } from './events.js';
import type { Logger } from './logger.js';
import { run } from './redis/scripts.js';
import { splitAcquireReply } from './redis/acquire-reply.js';
import { RedisClock, lateToleranceMs } from './letgo.js';
import { nowMs } from './sleep.js';
import { Outage, type FailurePolicy, type LocalShare } from './outage.js';

/**
 * One endpoint's client side: coalesces every acquire of an event-loop turn into one script call
 * (two when many arrive while no call is on its way),
 * sleeps reserved callers until their slot, keeps queued tickets until a reply (anyone's call
 * promoted them; most replies carry them) or a claim at their estimated turn delivers them.
 */

export interface LaneSettings {
  endpoint: string;
  keys: Keys;
  owner: string;
  ratePerMs: number;
  burst: number;
  maxQueue: number;
  /** The AIMD spec the scripts read ('' when the rate is fixed). */
  adaptive: string;
  /** This process's config version: the fleet follows the newest one's rate, burst and max queue. */
  configVersion: number;
  horizonMs: number;
  leaseMs: number;
  /** How late after its slot a caller may still be let go; later, its slot is written off and it queues again. Undefined: half the slot spacing, 5 to 50 ms. */
  lateToleranceMs?: number | undefined;
  global?: { ratePerMs: number; burst: number } | undefined;
  logger: Logger;
  events: EventHub;
  failurePolicy: FailurePolicy;
  /** This process's leased share of a rate while Redis is away, or undefined when the lease is gone (policy 'local'). */
  localShare: (ratePerMs: number, burst: number) => LocalShare | undefined;
  /** Appends a JSON audit entry the acquire script returned (a config version replaced) to the namespace's log. */
  audit: (entry: string) => void;
}

export interface LaneRequest {
  cost: number;
  /** Undefined: wait as long as it takes. */
  maxWaitMs?: number | undefined;
  tenant: string;
  priority: string;
  weight: number;
  tenantBudget?: { ratePerMs: number; burst: number } | undefined;
  signal?: AbortSignal | undefined;
}

/** What a caller learns when it may go. */
export interface Admission {
  endpoint: string;
  /** From the call to acquire until it resolved. */
  waitedMs: number;
  /** True when the caller waited in the fair queue (beyond the horizon). */
  queued: boolean;
  /** How long after its reserved slot the caller actually went (a measure of the limiter's precision). */
  lateMs: number;
  /** The reserved slot, in Redis time (ms since the epoch). */
  slot: number;
  /** Set when Redis was unreachable and the failure policy admitted the caller without it. */
  degraded?: 'local' | 'open';
}

interface Header {
  now: number;
  tokens: number;
  vtime: number;
  busyWeight: number;
  rate: number;
  burst: number;
  queued: number;
  queuedCost: number;
  /** No admission before this (Redis ms): a penalty's or an operator's pause; 0 = none. */
  pausedUntil: number;
}

type Phase = 'pending' | 'sent' | 'queued' | 'reserved' | 'done';

/**
 * A caller from acquire to its answer. A class with every field set from the start: one object of
 * one shape per acquire, where a literal grown field by field (slot, timers) took a second
 * allocation for the fields that did not fit and left the hot path polymorphic.
 */
class Waiter {
  deadline: number | undefined = undefined;
  phase: Phase = 'pending';
  queued = false;
  ticket: { member: string; seq: string; tag: number } | undefined = undefined;
  slot: number | undefined = undefined;
  timer: NodeJS.Timeout | undefined = undefined;
  deadlineTimer: NodeJS.Timeout | undefined = undefined;
  graceUsed = false;
  /** Admitted by the failure policy, without Redis. */
  degraded: 'local' | 'open' | undefined = undefined;
  onAbort: (() => void) | undefined = undefined;

  constructor(
    readonly id: number,
    readonly req: LaneRequest,
    readonly startedAt: number,
    readonly resolve: (a: Admission) => void,
    readonly reject: (e: unknown) => void,
  ) {}
}

const MAX_BATCH = 256;
/** A batch at least this large, with no call on its way, goes as two calls (see flush). */
const SPLIT_BATCH = 32;
/** Tickets a heartbeat asks Redis about (in turn): one that vanished without a word is queued again. */
const MAX_CHECK = 64;
/** Admissions after waiting at least this long are logged (info): where throughput went, at 3 a.m. */
const LONG_WAIT_MS = 10_000;
const MIN_WAKE_MS = 10;
/** How long a call already on its way may overrun a caller's deadline before Redis is judged unavailable. */
const REPLY_GRACE_MS = 1_000;
/** After an outage in policy 'local': how long Redis holds the bucket empty while the fleet reconnects. */
const RECOVERY_GRACE_MS = 500;

function toNum(s: unknown): number {
  if (s === 'inf') return Infinity;
  if (s === '-inf') return -Infinity;
  return Number(s);
}

/** Whether two requests are one group's in the acquire script (all it is told of a request but its id and wait). */
function alike(a: LaneRequest, b: LaneRequest): boolean {
  if (a === b) return true;
  const x = a.tenantBudget, y = b.tenantBudget;
  return a.cost === b.cost && a.tenant === b.tenant && a.priority === b.priority && a.weight === b.weight &&
    (x === y || (x !== undefined && y !== undefined && x.ratePerMs === y.ratePerMs && x.burst === y.burst));
}

/** Whether an acquire reply's results (id, status, a, b, c per request) queued a ticket. */
function queuedAny(results: unknown[]): boolean {
  for (let i = 1; i < results.length; i += 5) if (Number(results[i]) === 1) return true;
  return false;
}

/** Whether anyone still waits for a ticket's promotion. */
function waitsFor(carried: Waiter[]): boolean {
  for (const w of carried) if (w.phase === 'queued') return true;
  return false;
}

/** A number of the acquire script's reply: an integer in millionths (fixed() in lua/includes/clock.lua), or 'inf'. */
function fromFixed(v: unknown): number {
  return typeof v === 'number' ? v / 1e6 : toNum(v);
}

export class EndpointLane {
  private pending: Waiter[] = [];
  private readonly waiters = new Map<number, Waiter>();
  /**
   * Queued tickets by seq: the waiters a ticket carries, in its requests' order (a bundle carries
   * several, see fairQueue.lua). A waiter that gave up stays in its place until the ticket's fate
   * is known, so a bundle's slots still find their requests and its own slot is given back.
   */
  private readonly tickets = new Map<string, Waiter[]>();
  private flushScheduled = false;
  private inFlight = 0;
  private wakeTimer: NodeJS.Timeout | undefined;
  /** Holds new requests while the endpoint is backlogged, so that they go together (see lingerMs). */
  private lingerTimer: NodeJS.Timeout | undefined;
  private header: Header | undefined;
  private headerAt = 0;
  /** Redis time on this process's clock (slots land late, never early). */
  private readonly clock = new RedisClock();
  /** Callers written off as too late since the last log line, and the latest of them. */
  private late = { n: 0, maxMs: 0 };
  private lateLog: NodeJS.Timeout | undefined;
  private nextId = 0;
  private closed = false;
  /** The circuit breaker and the local bucket while Redis is away. */
  private readonly outage: Outage;
  private probeTimer: NodeJS.Timeout | undefined;
  /** Tickets still in Redis whose callers were admitted without it: cancelled when Redis is back. */
  private readonly orphans = new Map<string, { kind: 't'; ref: string; req: LaneRequest }>();
  /** Cancels on their way (close() waits for them). */
  private readonly cancels = new Set<Promise<void>>();
  private checkFrom = 0;
  /** Local ms of the last call that asked Redis whether this process's tickets still exist. */
  private checkedAt = -Infinity;
  /** Tickets out when close() was called, by seq: a reply still on its way may carry their promotion. */
  private readonly closedTickets = new Map<string, LaneRequest>();
  /** Script calls made by this lane (acquire and cancel), for efficiency figures. */
  calls = 0;
  /** Local ms when a call that renewed this process's lease in Redis was sent: renewed again after leaseMs / 3. */
  private leaseAt = -Infinity;

  constructor(
    private readonly redis: Redis | Cluster,
    readonly settings: LaneSettings,
  ) {
    this.outage = new Outage(settings.failurePolicy, settings.logger);
  }

  private get keys(): string[] {
    return this.settings.keys.script(this.settings.endpoint);
  }

  acquire(req: LaneRequest): Promise<Admission> {
    if (this.closed) return Promise.reject(new ThrottlerClosedError());
    return new Promise<Admission>((resolve, reject) => {
      const w = new Waiter(++this.nextId, req, nowMs(), resolve, reject);
      if (req.signal?.aborted) return reject(new AbortError(undefined, { cause: req.signal.reason }));
      if (req.maxWaitMs !== undefined) {
        w.deadline = w.startedAt + req.maxWaitMs;
        // the script refuses up front what cannot make it; this catches the rest (Redis away, a late promotion)
        w.deadlineTimer = setTimeout(() => this.onDeadline(w), req.maxWaitMs + 5);
      }
      if (req.signal) {
        w.onAbort = () => this.onAbort(w);
        req.signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.waiters.set(w.id, w);
      this.pending.push(w);
      // a caller with a deadline is never held back (the script refuses up front what cannot make it)
      this.scheduleFlush(w.deadline !== undefined);
    });
  }

  /** `urgent`: send with this event-loop turn's call, even while new requests linger. */
  private scheduleFlush(urgent = true): void {
    if (this.flushScheduled) return;
    if (!urgent) {
      const linger = this.lingerMs();
      if (linger > 0) {
        this.lingerTimer ??= setTimeout(() => {
          this.lingerTimer = undefined;
          if (this.pending.length > 0 && !this.flushScheduled) this.flush(false);
        }, linger);
        return;
      }
    }
    this.flushScheduled = true;
    setImmediate(() => this.flush(false));
  }

  /**
   * How long a new request may wait here before it is sent: one horizon while the endpoint's
   * backlog (as of the last reply) is longer than two horizons, else 0. Such a request would join
   * the fair queue anyway, behind at least that much work: sent up to a horizon later, it is served
   * no later (a busy class's tag is its finish tag, whenever it arrives; a class's first ticket may
   * start up to a horizon later), and the requests of that time share one call, usually the claim
   * this process makes before its tickets' turn (armWake). Calls are most of what an admission
   * costs Redis: 4 processes x 32 callers at 200/s made 1.04 calls per admission without this,
   * 0.21 with it.
   */
  private lingerMs(): number {
    const h = this.header;
    const s = this.settings;
    if (!h || h.queued === 0 || h.rate <= 0 || this.outage.failures > 0) return 0;
    const elapsed = nowMs() - this.headerAt;
    if (elapsed > s.horizonMs) return 0; // too old a view to bet on
    const linger = s.horizonMs;
    const backlog = (h.queuedCost - h.tokens) / h.rate - elapsed;
    return backlog > s.horizonMs + linger ? linger : 0;
  }

  private flush(claim: boolean): void {
    if (!claim) this.flushScheduled = false;
    if (this.closed) return;
    const open = this.outage.openFor();
    if (open > 0) {
      // the circuit is open: nobody times out against a dead Redis one by one; the probe asks again
      if (this.settings.failurePolicy !== 'closed') this.degrade();
      this.armProbe(open);
      return;
    }
    if (this.outage.failures > 0 && this.outage.admitted > 0) {
      this.drainProbe();
      return;
    }
    const n = Math.min(this.pending.length, MAX_BATCH);
    // many callers and nothing on its way: two calls, so that this process works through the first
    // reply while Redis runs the second (one call makes them take turns: 64 uncontended callers
    // left the process idle 43% of the time); their callers come back at different times, so the
    // two calls keep alternating without splitting again
    const split = !claim && this.inFlight === 0 && n >= SPLIT_BATCH;
    const batch = this.pending.splice(0, split ? Math.ceil(n / 2) : n);
    if (this.pending.length === 0 && this.lingerTimer) {
      clearTimeout(this.lingerTimer);
      this.lingerTimer = undefined;
    }
    if (this.pending.length > 0 && !split) this.scheduleFlush();
    const hasTickets = this.tickets.size > 0;
    if (batch.length === 0 && !hasTickets && this.outage.failures === 0) return;
    const s = this.settings;
    const lease = !hasTickets ? '0' : nowMs() - this.leaseAt < s.leaseMs / 3 ? '2' : '1';
    const args: (string | number)[] = [
      s.endpoint, s.owner, s.ratePerMs, s.burst, s.horizonMs, s.maxQueue, s.leaseMs,
      lease, s.global ? s.global.ratePerMs : '', s.global ? s.global.burst : '', s.adaptive, s.configVersion, 0,
    ];
    // the group count (set below) is the last of the fixed arguments
    const groupsAt = args.length - 1;
    const sentAt = nowMs();
    const sentIn = this.outage.generation;
    // alike requests with consecutive ids go as one group (first id, count, then what they share):
    // every argument is work for ioredis and for Redis, and uncontended callers are all alike
    let groups = 0;
    let countAt = 0;
    let prev: Waiter | undefined;
    let prevMaxWait = 0;
    for (const w of batch) {
      w.phase = 'sent';
      const r = w.req;
      const maxWait = w.deadline === undefined ? -1 : Math.max(0, Math.floor(w.deadline - sentAt));
      if (prev !== undefined && w.id === prev.id + 1 && maxWait === prevMaxWait && alike(r, prev.req)) {
        (args[countAt] as number)++;
      } else {
        groups++;
        countAt = args.length + 1;
        args.push(w.id, 1, r.cost, maxWait, r.tenant, r.priority, r.weight, r.tenantBudget ? r.tenantBudget.ratePerMs : '', r.tenantBudget ? r.tenantBudget.burst : '');
      }
      prev = w;
      prevMaxWait = maxWait;
    }
    args[groupsAt] = groups;
    // a heartbeat (or claim) asks whether its tickets still exist: one whose mail expired before
    // this process came back (an event-loop stall longer than the lease) would wait forever
    // once per heartbeat period: at saturation most calls are claims, and each check is an argument
    // per ticket and a ZMSCORE of them all
    const check = claim && sentAt - this.checkedAt >= s.leaseMs / 3 ? this.ticketsToCheck() : [];
    if (check.length > 0) this.checkedAt = sentAt;
    args.push(check.length, ...check);
    this.inFlight++;
    this.calls++;
    run<unknown[]>(this.redis, 'acquire', this.keys, args).then(
      (flat) => {
        const reply = splitAcquireReply(flat);
        this.inFlight--;
        if (this.settings.events.active) this.settings.events.emit({ type: 'redis-call', endpoint: s.endpoint, script: 'acquire', ms: nowMs() - sentAt, ok: true });
        if (this.outage.failures > 0) this.recovered();
        // the script renews the lease when asked ('1'), or when it queued a ticket unasked ('0')
        const results = (reply[1] ?? []) as unknown[];
        if (lease === '1' || (lease === '0' && queuedAny(results))) this.leaseAt = sentAt;
        if (reply[4]) s.audit(String(reply[4]));
        this.onReply(reply, sentAt, nowMs());
      },
      (err: unknown) => {
        this.inFlight--;
        if (this.settings.events.active) this.settings.events.emit({ type: 'redis-call', endpoint: s.endpoint, script: 'acquire', ms: nowMs() - sentAt, ok: false });
        this.onFailure(batch, err, sentIn);
      },
    );
    if (split) this.flush(false);
  }

  private ticketsToCheck(): string[] {
    const all = [...this.tickets.values()].filter(waitsFor).map((ws) => ws[0]!.ticket!.member);
    if (all.length <= MAX_CHECK) return all;
    this.checkFrom = (this.checkFrom + MAX_CHECK) % all.length;
    return [...all.slice(this.checkFrom), ...all.slice(0, this.checkFrom)].slice(0, MAX_CHECK);
  }

  /** A ticket that left the queue without being served while its caller still waits: queue it again. */
  private requeue(w: Waiter, why: string): void {
    this.settings.logger.warn({ tenant: w.req.tenant, priority: w.req.priority, leaseMs: this.settings.leaseMs }, why);
    w.ticket = undefined;
    w.phase = 'pending';
    this.pending.push(w);
    this.scheduleFlush();
  }

  /** Redis ms minus local ms. */
  private get offset(): number {
    return this.clock.offset;
  }

  private onReply(reply: unknown[], sentAt: number, receivedAt: number): void {
    const [rawHeader, results, mailbox, lost = []] = reply as [unknown[], unknown[], unknown[], unknown[]?];
    const h = rawHeader;
    const header: Header = {
      now: fromFixed(h[0]), tokens: fromFixed(h[1]), vtime: fromFixed(h[2]), busyWeight: fromFixed(h[3]),
      // '': as this process configured it
      rate: h[4] === '' ? this.settings.ratePerMs : toNum(h[4]), burst: h[5] === '' ? this.settings.burst : toNum(h[5]),
      queued: Number(h[6]), queuedCost: fromFixed(h[7]), pausedUntil: fromFixed(h[9] ?? 0),
    };
    if (rawHeader[8] === 'up') {
      this.settings.logger.info({ fromPerSec: (this.header?.rate ?? NaN) * 1000, toPerSec: header.rate * 1000, reason: 'quiet period without penalty' }, 'adaptive rate raised');
    }
    this.header = header;
    this.headerAt = receivedAt;
    this.clock.note(header.now, sentAt, receivedAt);
    this.outage.notePause(header.pausedUntil - this.offset, true);
    if (this.closed) {
      // a reply after close(): give back everything it brings, reject whoever still waits on it
      const cancelled = new Set<string>();
      for (let i = 0; i < results.length; i += 5) {
        const w = this.waiters.get(Number(results[i]));
        if (!w) continue;
        this.waiters.delete(w.id);
        const status = Number(results[i + 1]);
        const a = status === 0 ? String(fromFixed(results[i + 2])) : String(results[i + 2]);
        if (status === 0) this.cancel([{ kind: 'r', ref: a, req: w.req }]);
        // a bundle's requests share its ticket: given back once
        if (status === 1 && !cancelled.has(a)) {
          cancelled.add(a);
          this.cancel([{ kind: 't', ref: a, req: w.req }]);
        }
        this.fail(w, new ThrottlerClosedError());
      }
      for (let i = 0; i < mailbox.length; i += 2) {
        const req = this.closedTickets.get(String(mailbox[i]));
        if (req) this.giveBackSlots(String(mailbox[i + 1]), req);
      }
      return;
    }

    // tickets queued for callers that gave up while the call was on its way
    let abandoned: Set<string> | undefined;
    for (let i = 0; i < results.length; i += 5) {
      const id = Number(results[i]);
      const status = Number(results[i + 1]);
      const w = this.waiters.get(id);
      if (status === 0 && w !== undefined && w.phase !== 'done') {
        // a reservation's slot, in Redis ms: the common case, kept a number
        this.reserve(w, fromFixed(results[i + 2]));
        continue;
      }
      const a = status === 0 ? String(fromFixed(results[i + 2])) : String(results[i + 2]);
      if (status === 1 && w !== undefined) {
        // queued: into its ticket's place, also when its caller gave up meanwhile (a bundle's
        // other requests may still wait for it; its slot is given back when it comes)
        const seq = a.slice(0, a.indexOf('|'));
        w.ticket = { member: a, seq, tag: fromFixed(results[i + 4]) };
        const carried = this.tickets.get(seq);
        if (carried) carried.push(w);
        else this.tickets.set(seq, [w]);
        if (w.phase === 'done') {
          this.waiters.delete(id);
          (abandoned ??= new Set()).add(seq);
          continue;
        }
      }
      if (!w || w.phase === 'done') {
        // its caller gave up while the call was on its way: give back what it got
        this.lateResult(id, status, a);
        continue;
      }
      const ep = this.settings.endpoint;
      switch (status) {
        case 1: {
          w.phase = 'queued';
          w.queued = true;
          const eta = fromFixed(results[i + 3]);
          if (eta > 5_000 && this.settings.logger.isLevelEnabled('debug')) this.settings.logger.debug({ tenant: w.req.tenant, priority: w.req.priority, etaMs: Math.round(eta) }, 'queued for a long wait');
          break;
        }
        case -1: {
          const eta = toNum(a);
          this.settings.logger.warn({ tenant: w.req.tenant, priority: w.req.priority, expectedWaitMs: Math.round(eta), maxWaitMs: w.req.maxWaitMs }, 'refused up front: expected wait passes maxWaitMs');
          this.fail(w, new ThrottleTimeoutError(`"${ep}": expected wait ${Number.isFinite(eta) ? `${Math.ceil(eta)} ms` : 'is unbounded (rate 0)'} passes maxWaitMs ${w.req.maxWaitMs}; raise maxWaitMs or the endpoint's rate`, ep, eta));
          break;
        }
        case -2:
          this.settings.logger.warn({ tenant: w.req.tenant, priority: w.req.priority, maxQueue: Number(a) }, 'queue full');
          this.fail(w, new QueueFullError(`"${ep}": the fair queue is full (${a} waiting); slow the producers down or raise maxQueue`, ep, Number(a)));
          break;
        case -3:
          this.fail(w, new CostAboveBurstError(ep, w.req.cost, Number(a)));
          break;
        default:
          this.fail(w, new Error(`acquire script answered unknown status ${status}`));
      }
    }
    if (abandoned) {
      for (const seq of abandoned) {
        const carried = this.tickets.get(seq);
        if (carried && !waitsFor(carried)) this.cancelTicket(carried);
      }
    }
    for (let i = 0; i < mailbox.length; i += 2) {
      const seq = String(mailbox[i]);
      const value = String(mailbox[i + 1]);
      const carried = this.tickets.get(seq);
      if (!carried) {
        // an orphan's promotion, taken from the mailbox before its cancel ran: give the slot back
        const o = this.orphans.get(seq);
        if (o) this.giveBackSlots(value, o.req);
        continue;
      }
      this.tickets.delete(seq);
      const ep = this.settings.endpoint;
      // its callers still waiting (those who gave up stay in place only for the slots below)
      const waiting = carried.filter((w) => w.phase === 'queued');
      if (value === 'd') {
        this.leaseAt = -Infinity;
        for (const w of waiting) this.requeue(w, 'ticket dropped: this process did not renew its lease in time (an event-loop stall longer than leaseMs?): queued again');
      } else if (value === 'x') {
        for (const w of waiting) {
          this.settings.logger.warn({ tenant: w.req.tenant, priority: w.req.priority, maxWaitMs: w.req.maxWaitMs }, 'ticket expired in the queue');
          this.fail(w, new ThrottleTimeoutError(`"${ep}": maxWaitMs ${w.req.maxWaitMs} passed while queued`, ep));
        }
      } else if (value.startsWith('b')) {
        for (const w of waiting) {
          this.settings.logger.warn({ tenant: w.req.tenant, priority: w.req.priority, cost: w.req.cost, burst: Number(value.slice(1)) }, 'queued ticket refused: the burst was lowered below its cost');
          this.fail(w, new CostAboveBurstError(ep, w.req.cost, Number(value.slice(1))));
        }
      } else {
        // the slots of the ticket's requests, in their order
        const slots = value.split(',');
        const back: string[] = [];
        for (let j = 0; j < slots.length; j++) {
          const w = carried[j];
          if (w === undefined || w.phase === 'done') back.push(slots[j]!);
          else this.reserve(w, toNum(slots[j]));
        }
        if (back.length > 0) this.giveBackSlots(back.join(','), carried[0]!.req);
      }
    }
    for (const member of lost as unknown[]) {
      const m = String(member);
      const seq = m.slice(0, m.indexOf('|'));
      const carried = this.tickets.get(seq);
      this.leaseAt = -Infinity;
      if (carried && carried[0]!.ticket?.member === m) {
        this.tickets.delete(seq);
        for (const w of carried) if (w.phase === 'queued') this.requeue(w, 'ticket gone from the queue without a word: queued again');
      }
    }
    this.armWake();
  }

  /** Gives a ticket back; it stays known until the cancel answers: a reply may still deliver its promotion. */
  private cancelTicket(carried: Waiter[]): void {
    const first = carried[0]!;
    if (!first.ticket) return;
    this.cancel([{ kind: 't', ref: first.ticket.member, req: first.req, seq: first.ticket.seq }]);
  }

  /** Gives back the slots of a promotion nobody will use ('a,b': a bundle's), if it is one. */
  private giveBackSlots(value: string, req: LaneRequest): void {
    if (/^[\d.,]+$/.test(value)) this.cancel([{ kind: 'r', ref: value, req }]);
  }

  private lateResult(id: number, status: number, a: string): void {
    const w = this.waiters.get(id);
    this.waiters.delete(id);
    if (!w) return;
    if (status === 0) this.cancel([{ kind: 'r', ref: a, req: w.req }]);
    if (status === 1) this.cancel([{ kind: 't', ref: a, req: w.req }]);
  }

  private reserve(w: Waiter, slot: number): void {
    w.phase = 'reserved';
    w.slot = slot;
    const delay = slot - this.offset - nowMs();
    if (delay <= 0) this.grant(w);
    else w.timer = setTimeout(() => this.grant(w), delay);
  }

  private grant(w: Waiter): void {
    if (w.phase === 'done') return;
    const now = nowMs();
    // never before the slot: a timer may fire a fraction of a ms early, and an upstream that counts
    // at the same rate sees a request a ms early as one too many (bench/referee.ts)
    const early = (w.slot ?? 0) - (now + this.offset);
    if (early > 0 && w.phase === 'reserved') {
      w.timer = setTimeout(() => this.grant(w), Math.ceil(early));
      return;
    }
    const lateMs = Math.max(0, now + this.offset - (w.slot ?? 0));
    if (w.degraded !== 'open' && lateMs > lateToleranceMs(this.settings.lateToleranceMs, this.header?.rate ?? this.settings.ratePerMs)) {
      this.writeOff(w, lateMs);
      return;
    }
    this.settle(w);
    const waitedMs = now - w.startedAt;
    if (waitedMs >= LONG_WAIT_MS) {
      this.settings.logger.info({ tenant: w.req.tenant, priority: w.req.priority, waitedMs: Math.round(waitedMs) }, 'admitted after a long wait');
    }
    if (this.settings.events.active) {
      this.settings.events.emit({ type: 'admitted', endpoint: this.settings.endpoint, tenant: w.req.tenant, priority: w.req.priority, waitedMs, queued: w.queued, lateMs });
    }
    const admission: Admission = { endpoint: this.settings.endpoint, waitedMs, queued: w.queued, lateMs, slot: w.slot ?? 0 };
    if (w.degraded) admission.degraded = w.degraded;
    w.resolve(admission);
  }

  /**
   * A caller found too late at its slot (this process was stalled): going now would add to
   * whatever the upstream saw meanwhile. Its slot is written off (spent in Redis, never used: safe)
   * and it asks for a fresh one like a new call, with its tenant, priority and deadline.
   */
  private writeOff(w: Waiter, lateMs: number): void {
    clearTimeout(w.timer);
    w.slot = undefined;
    w.ticket = undefined;
    w.degraded = undefined;
    w.phase = 'pending';
    this.pending.push(w);
    this.scheduleFlush();
    const s = this.settings;
    if (s.events.active) s.events.emit({ type: 'requeued-late', endpoint: s.endpoint, tenant: w.req.tenant, priority: w.req.priority, lateMs });
    this.late.n++;
    this.late.maxMs = Math.max(this.late.maxMs, lateMs);
    // a stall finds many callers late at once: one line for them all
    this.lateLog ??= setTimeout(() => {
      this.lateLog = undefined;
      const toleranceMs = lateToleranceMs(s.lateToleranceMs, this.header?.rate ?? s.ratePerMs);
      s.logger.info({ requeued: this.late.n, maxLateMs: Math.round(this.late.maxMs), toleranceMs: Math.round(toleranceMs * 10) / 10 }, 'callers found later than lateToleranceMs after their slot (event-loop stall?): slots written off, callers queued again');
      this.late = { n: 0, maxMs: 0 };
    }, 100).unref();
  }

  /** Ends a waiter's timers and listeners; `keep` leaves it findable (see giveUp). */
  private settle(w: Waiter, keep = false): void {
    w.phase = 'done';
    // most waiters never had a timer: skip the calls
    if (w.timer) clearTimeout(w.timer);
    if (w.deadlineTimer) clearTimeout(w.deadlineTimer);
    if (w.onAbort) w.req.signal?.removeEventListener('abort', w.onAbort);
    if (!keep) this.waiters.delete(w.id);
  }

  private refused(w: Waiter, reason: Extract<ThrottleEvent, { type: 'refused' }>['reason']): void {
    if (this.settings.events.active) {
      this.settings.events.emit({ type: 'refused', endpoint: this.settings.endpoint, tenant: w.req.tenant, priority: w.req.priority, reason });
    }
  }

  private fail(w: Waiter, err: unknown): void {
    if (w.phase === 'done') return;
    const code = (err as { code?: string }).code;
    this.refused(w, code === 'THROTTLE_TIMEOUT' ? 'timeout' : code === 'QUEUE_FULL' ? 'queue-full' : code === 'COST_ABOVE_BURST' ? 'cost-above-burst' : code === 'THROTTLER_CLOSED' ? 'closed' : code === 'REDIS_UNAVAILABLE' ? 'redis-unavailable' : 'aborted');
    this.settle(w);
    if (w.ticket) {
      const carried = this.tickets.get(w.ticket.seq);
      if (carried && !waitsFor(carried)) this.tickets.delete(w.ticket.seq);
    }
    w.reject(err);
  }

  /** Gives back what a waiter holds (its ticket or its future slot), then rejects it. */
  private giveUp(w: Waiter, err: unknown): void {
    const phase = w.phase;
    if (phase === 'done') return;
    if (phase === 'pending') this.pending = this.pending.filter((p) => p !== w);
    const carried = phase === 'queued' && w.ticket ? this.tickets.get(w.ticket.seq) : undefined;
    if (phase === 'reserved' && w.slot !== undefined) {
      if (w.degraded === 'local') {
        if (w.slot - this.offset > nowMs()) this.outage.giveBackLocal(w.req.cost);
      } else if (!w.degraded) {
        this.cancel([{ kind: 'r', ref: String(w.slot), req: w.req }]);
      }
    }
    // a sent waiter stays findable so its late result is given back
    this.settle(w, phase === 'sent');
    // a ticket nobody waits for any more is given back; a bundle's other requests keep it (this
    // one's slot is given back when it comes)
    if (carried && !waitsFor(carried)) this.cancelTicket(carried);
    const code = (err as { code?: string }).code;
    this.refused(w, code === 'ABORTED' ? 'aborted' : code === 'REDIS_UNAVAILABLE' ? 'redis-unavailable' : 'timeout');
    w.reject(err);
    this.armWake();
  }

  private onAbort(w: Waiter): void {
    this.giveUp(w, new AbortError(undefined, { cause: w.req.signal?.reason }));
  }

  private onDeadline(w: Waiter): void {
    if (w.phase === 'reserved' || w.phase === 'done') return;
    const ep = this.settings.endpoint;
    if ((w.phase === 'sent' || w.phase === 'pending') && this.outage.failures === 0 && !w.graceUsed) {
      // the script judges the deadline in Redis time; a reply on its way gets a moment to arrive
      w.graceUsed = true;
      w.deadlineTimer = setTimeout(() => this.onDeadline(w), REPLY_GRACE_MS);
      return;
    }
    if (w.phase === 'sent' || w.phase === 'pending') {
      this.giveUp(w, new RedisUnavailableError(`"${ep}": Redis did not answer within maxWaitMs ${w.req.maxWaitMs} (failure policy: closed)`));
    } else {
      this.settings.logger.warn({ tenant: w.req.tenant, priority: w.req.priority, maxWaitMs: w.req.maxWaitMs }, 'maxWaitMs passed while queued');
      this.giveUp(w, new ThrottleTimeoutError(`"${ep}": maxWaitMs ${w.req.maxWaitMs} passed while queued`, ep));
    }
  }

  private cancel(items: { kind: 'r' | 't'; ref: string; req: LaneRequest; seq?: string }[]): Promise<void> {
    const s = this.settings;
    const args: (string | number)[] = [s.ratePerMs, s.burst, s.global ? s.global.ratePerMs : '', s.global ? s.global.burst : '', s.adaptive, s.configVersion, items.length];
    for (const it of items) {
      args.push(it.kind, it.ref, it.req.cost, it.req.tenant);
    }
    this.calls++;
    const done = run<number[]>(this.redis, 'cancel', this.keys, args).then(
      () => this.forget(items),
      (err: unknown) => {
        // the ticket's deadline or the owner's lease frees it in Redis anyway; keeping it known
        // here would keep this process heartbeating (and its lease alive) for nobody, forever
        this.forget(items);
        this.settings.logger.warn({ err }, 'could not give back a reservation or ticket');
      },
    );
    this.cancels.add(done);
    void done.finally(() => this.cancels.delete(done));
    return done;
  }

  /** Tickets kept known only until their cancel answered. */
  private forget(items: { seq?: string }[]): void {
    for (const it of items) {
      const carried = it.seq ? this.tickets.get(it.seq) : undefined;
      if (carried && !waitsFor(carried)) this.tickets.delete(it.seq!);
    }
    this.armWake();
  }

  /** When to talk to Redis next while tickets wait: just before the earliest turn, or a heartbeat. */
  private armWake(minDelay = MIN_WAKE_MS): void {
    clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    if (this.closed || this.tickets.size === 0 || !this.header) return;
    const h = this.header;
    const s = this.settings;
    const elapsed = nowMs() - this.headerAt;
    let earliest = Infinity;
    for (const carried of this.tickets.values()) {
      // a ticket goes when its first request's turn comes (a bundle goes whole)
      const w = carried[0]!;
      if (!waitsFor(carried) || !w.ticket) continue;
      // Start tags: V is the tag of the last ticket promoted, whose cost is already debited from
      // `tokens`; the work between V and this ticket's tag counts that one too, so take a ticket's
      // cost off. Exact for one class with equal costs; otherwise an estimate, off by the cost
      // difference (a wake that comes late is bounded by the heartbeat below).
      const ahead = Math.min(Math.max(0, (w.ticket.tag - h.vtime) * h.busyWeight - w.req.cost), h.queuedCost);
      const eta = h.rate > 0 ? Math.max(0, (ahead + w.req.cost - h.tokens) / h.rate) : Infinity;
      if (eta < earliest) earliest = eta;
    }
    // without calls, tokens would overflow the burst once reservations run out: keep someone calling
    const heartbeat = Math.min(s.horizonMs + (h.rate > 0 ? (0.5 * h.burst) / h.rate : Infinity), s.leaseMs / 3);
    const delay = Math.max(minDelay, Math.min(earliest - s.horizonMs / 2, heartbeat) - elapsed);
    // jitter spreads the fleet's wake-ups, but never by more than a quarter horizon: a wake for a
    // turn 1 s away jittered by 10% came 100 ms late, after its slot (a hole at 1/s)
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined;
      if (this.inFlight > 0) return; // its reply re-arms
      this.flush(true);
    }, delay + (Math.random() * 2 - 1) * Math.min(delay * 0.1, s.horizonMs / 4));
  }

  private onFailure(batch: Waiter[], err: unknown, sentIn: number): void {
    if (err instanceof ReplyError) {
      this.settings.logger.error({ err }, 'acquire script failed');
      for (const w of batch) this.fail(w, err);
      // queued tickets still wait: keep the heartbeat going (slowly), or they would wait forever
      this.armWake(Math.min(1_000, this.settings.leaseMs / 3));
      return;
    }
    const backoff = this.outage.failed(err, sentIn);
    const retry = batch.filter((w) => w.phase === 'sent');
    for (const w of retry) w.phase = 'pending';
    this.pending.unshift(...retry);
    for (const w of batch) if (w.phase === 'done') this.waiters.delete(w.id);
    if (this.settings.failurePolicy !== 'closed') this.degrade();
    clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    this.armProbe(backoff);
  }

  /** One call to see whether Redis is back, when the circuit's backoff ends. */
  private armProbe(delay: number): void {
    if (this.probeTimer || this.closed) return;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined;
      this.flush(true);
    }, Math.max(0, delay));
  }

  /** Redis is away and the policy is not 'closed': serve waiters without it. */
  private degrade(): void {
    const waiting = [...this.pending, ...[...this.tickets.values()].flat().filter((w) => w.phase === 'queued')];
    this.pending = [];
    for (const w of waiting) {
      const ticket = w.ticket;
      if (ticket) this.tickets.delete(ticket.seq);
      // a ticket Redis may still hold is given back when Redis answers (recovered): admitted
      // here, it must not be served a second time; waiting for Redis, it queues afresh
      if (ticket) this.orphans.set(ticket.seq, { kind: 't', ref: ticket.member, req: w.req });
      if (!this.admitWithoutRedis(w)) {
        w.ticket = undefined;
        w.phase = 'pending';
        this.pending.push(w);
      }
    }
  }

  /** Returns false when the caller must wait for Redis after all (policy 'local' without a valid lease). */
  private admitWithoutRedis(w: Waiter): boolean {
    const s = this.settings;
    if (s.failurePolicy === 'open') {
      w.degraded = 'open';
      w.phase = 'reserved';
      w.slot = nowMs() + this.offset;
      this.outage.admitted++;
      this.grant(w);
      return true;
    }
    const now = nowMs();
    const local = this.outage.takeLocal(s.localShare(this.header?.rate ?? s.ratePerMs, this.header?.burst ?? s.burst), w.req.cost, now, w.deadline);
    if (local === undefined) return false;
    if (!local.taken) {
      this.fail(w, new ThrottleTimeoutError(`"${s.endpoint}": Redis is unreachable and this process's leased share cannot admit within maxWaitMs ${w.req.maxWaitMs}`, s.endpoint, local.at - now));
      return true;
    }
    w.degraded = 'local';
    this.reserve(w, local.at + this.offset);
    return true;
  }

  /**
   * The probe after an outage in which this process admitted without Redis: hold the bucket empty
   * for a short grace first (the fleet spent tokens Redis never saw, a restarted Redis starts full,
   * and processes that have not reconnected yet still spend their local shares), so recovery
   * begins without a burst; only then do the waiting callers go to Redis.
   */
  private drainProbe(): void {
    const s = this.settings;
    const sentIn = this.outage.generation;
    this.inFlight++;
    this.calls++;
    run(this.redis, 'penalize', [s.keys.config(s.endpoint), s.keys.bucket(s.endpoint)], [s.ratePerMs, s.burst, RECOVERY_GRACE_MS, '', 'recover', s.configVersion]).then(
      () => {
        this.inFlight--;
        this.recovered();
        this.scheduleFlush();
      },
      (err: unknown) => {
        this.inFlight--;
        this.onFailure([], err, sentIn);
      },
    );
  }

  /** A penalty this process reported (also while Redis is away): no local admission before it. */
  notePause(untilLocalMs: number): void {
    this.outage.notePause(untilLocalMs);
  }

  /** Redis answers again after an outage. */
  private recovered(): void {
    this.outage.recovered();
    this.leaseAt = -Infinity;
    // a restarted or failed-over Redis may have lost the queue: tickets out go in again (their old
    // entries, if they survived, are given back)
    const carried = [...this.tickets.values()].filter(waitsFor);
    const requeue = carried.flat().filter((w) => w.phase === 'queued' && w.ticket);
    if (this.orphans.size > 0) {
      const orphans = [...this.orphans.entries()];
      void this.cancel(orphans.map(([, o]) => o)).then(() => {
        for (const [seq] of orphans) this.orphans.delete(seq);
      });
    }
    if (requeue.length > 0) {
      this.cancel(carried.map((ws) => ({ kind: 't' as const, ref: ws[0]!.ticket!.member, req: ws[0]!.req })));
      for (const w of requeue) {
        this.tickets.delete(w.ticket!.seq);
        w.ticket = undefined;
        w.phase = 'pending';
        this.pending.push(w);
      }
      this.scheduleFlush();
    }
  }

  /** Refuses new calls, gives back every ticket and future slot, rejects their callers. */
  async close(): Promise<void> {
    if (this.closed) return;
    const items: { kind: 'r' | 't'; ref: string; req: LaneRequest }[] = [];
    for (const w of [...this.waiters.values()]) {
      if (w.phase === 'queued' && w.ticket && !this.closedTickets.has(w.ticket.seq)) {
        items.push({ kind: 't', ref: w.ticket.member, req: w.req });
        this.closedTickets.set(w.ticket.seq, w.req);
      }
      if (w.phase === 'reserved' && w.slot !== undefined && !w.degraded) items.push({ kind: 'r', ref: String(w.slot), req: w.req });
      if (w.phase !== 'sent') this.fail(w, new ThrottlerClosedError());
    }
    this.closed = true;
    clearTimeout(this.wakeTimer);
    clearTimeout(this.probeTimer);
    clearTimeout(this.lingerTimer);
    this.pending = [];
    if (items.length > 0) await this.cancel(items);
    // calls on their way: wait briefly so their results can be given back (see onReply)
    const until = Date.now() + 2_000;
    while (this.inFlight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    for (const w of [...this.waiters.values()]) {
      if (w.phase !== 'sent') continue;
      // still on its way: rejected now, but kept findable so a reply that comes later is given back
      this.refused(w, 'closed');
      this.settle(w, true);
      w.reject(new ThrottlerClosedError());
    }
    await Promise.all([...this.cancels]);
  }
}
