/**
 * BullMQ queue figures (jobs by state, workers online) for the metrics and the admin API's fleet
 * view. Typed structurally so any BullMQ `Queue` fits, whatever its job types.
 */
import type { JobType } from 'bullmq';

/** Job states reported, in display order. `prioritized` is where BullMQ keeps waiting jobs that have a priority. */
export const JOB_STATES = ['waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed'] as const satisfies readonly JobType[];
export type JobState = (typeof JOB_STATES)[number];

/** What Sluice reads from a BullMQ queue. */
export interface JobQueue {
  readonly name: string;
  getJobCounts(...types: JobType[]): Promise<Record<string, number>>;
  /** Worker connections of this queue (BullMQ names them with CLIENT SETNAME). */
  getWorkersCount(): Promise<number>;
}

export interface QueueFigures {
  queue: string;
  workers: number;
  jobs: Record<JobState, number>;
}

/** Queues as a list, or as `createQueues()` returns them. */
export type QueuesInput = readonly JobQueue[] | { discovery: JobQueue; harvesting: JobQueue };

/** The queues of either input shape, as a list. */
export function queueList(queues: QueuesInput | undefined): JobQueue[] {
  if (!queues) return [];
  return 'discovery' in queues ? [queues.discovery, queues.harvesting] : [...queues];
}

/** Job counts and workers of every queue, read in parallel. */
export async function readQueueFigures(queues: readonly JobQueue[]): Promise<QueueFigures[]> {
  return Promise.all(
    queues.map(async (q) => {
      const [counts, workers] = await Promise.all([q.getJobCounts(...JOB_STATES), q.getWorkersCount()]);
      const jobs = Object.fromEntries(JOB_STATES.map((s) => [s, counts[s] ?? 0])) as Record<JobState, number>;
      return { queue: q.name, workers, jobs };
    }),
  );
}
