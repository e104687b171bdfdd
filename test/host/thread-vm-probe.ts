/** A VM thread that reports what it was given (environment, stdin, pid) on stderr and exits 0 (thread.test.ts). */
let stdinBytes = 0;
process.stdin.on('data', (d: Buffer) => (stdinBytes += d.length));
process.stdin.on('end', () => {
  process.stderr.write(JSON.stringify({ env: Object.keys(process.env), stdinBytes, pid: process.pid, argv: process.argv.slice(2) }));
  process.exit(0);
});
process.stdin.resume();
