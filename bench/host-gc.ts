/**
 * The host process's garbage collections over a measured interval, from V8's own `gc` performance entries:
 * how many young-generation collections (scavenges) and full mark-compacts ran, and their main-thread pause
 * time. Printed per execution next to the CPU figures, so a change that makes the host allocate or retain more
 * per call shows even when the CPU figure is lost in the load. (Concurrent marking and sweeping run on V8's
 * helper threads: they are in the host CPU figure, not in these pauses.)
 */
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';

export interface HostGc {
  scavenges: number;
  markCompacts: number;
  /** Main-thread time inside those collections (incremental marking steps included), ms. */
  pauseMs: number;
}

/** Starts counting; stop() returns what ran since (pending entries included). */
export function watchHostGc(): { stop(): HostGc } {
  const gc: HostGc = { scavenges: 0, markCompacts: 0, pauseMs: 0 };
  const add = (entries: PerformanceEntry[]): void => {
    for (const e of entries) {
      const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) gc.scavenges++;
      else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) gc.markCompacts++;
      gc.pauseMs += e.duration;
    }
  };
  const observer = new PerformanceObserver((list) => add(list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  return {
    stop(): HostGc {
      add(observer.takeRecords());
      observer.disconnect();
      return gc;
    },
  };
}
