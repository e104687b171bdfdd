/**
 * Preloaded into profiled VMs by profile-pool.ts (`node --import`): the pool stops its VMs with SIGTERM when
 * the host closes, and node writes a --cpu-prof profile only on a normal exit, so exit normally on SIGTERM.
 */
process.on('SIGTERM', () => process.exit(0));
