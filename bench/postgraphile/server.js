// PostGraphile 4 over the benchmark's PostgreSQL database, one worker process per core
// (Node's cluster module sharing one port), as the peer of bench/nested_read.py.
// Usage: DATABASE_URL=postgres://... PORT=5678 WORKERS=2 node server.js
const cluster = require("cluster");
const http = require("http");
const os = require("os");
const { postgraphile } = require("postgraphile");

const workers = Number(process.env.WORKERS || os.cpus().length);
const port = Number(process.env.PORT || 5678);

if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i += 1) cluster.fork();
  cluster.on("exit", (worker, code) => {
    console.error(`postgraphile worker ${worker.process.pid} exited (${code})`);
    process.exit(1);
  });
} else {
  const middleware = postgraphile(process.env.DATABASE_URL, "public", {
    disableQueryLog: true,
    retryOnInitFail: false,
    graphiql: false,
    setofFunctionsContainNulls: false,
    ignoreRBAC: true,
    enableQueryBatching: false,
  });
  http.createServer(middleware).listen(port, "127.0.0.1");
}
