/** The fleet at a glance: workers online, jobs by state, what has been harvested. */
import { JOB_STATES, readQueueFigures, type JobQueue, type JobState, type QueueFigures } from '../metrics/job-queues.js';

export interface FleetView {
  /** Worker connections summed over the queues (a process working both queues counts twice). */
  workersOnline: number;
  /** Jobs by state, summed over the queues. */
  jobs: Record<JobState, number>;
  queues: QueueFigures[];
  /** Harvested profiles and domains; null when the server was given no results store. */
  /** The app's own result counts (e.g. `{ profiles: 12, domains: 30 }`), shown as they are. */
  results: Record<string, number> | null;
}

/** Anything that counts the app's results: each name and count is shown on the dashboard. */
export interface ResultsCounter {
  counts(): Promise<Record<string, number>>;
}

export async function readFleet(queues: readonly JobQueue[], results: ResultsCounter | undefined): Promise<FleetView> {
  const [figures, counts] = await Promise.all([readQueueFigures(queues), results ? results.counts() : Promise.resolve(null)]);
  const jobs = Object.fromEntries(JOB_STATES.map((s) => [s, figures.reduce((n, f) => n + f.jobs[s], 0)])) as Record<JobState, number>;
  return { workersOnline: figures.reduce((n, f) => n + f.workers, 0), jobs, queues: figures, results: counts };
}
