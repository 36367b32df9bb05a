// A webhook receiver as a Runflow user would write it: it verifies every message with the
// Standard Webhooks reference library (`standardwebhooks` on npm), unchanged.
//
// Prints `{"port": N}` once listening on 127.0.0.1. Test controls:
//   POST /_control/secret   body: the endpoint's signing secret (whsec_...)
//   GET  /_control/log      every call received: {path, id, timestamp, verified, error, status, type, payload}
// Every other path is a webhook target: it answers 400 to a message that does not verify,
// 500 to the first RECEIVER_FAIL_FIRST verified messages, and 204 after that.
import http from "node:http";
import { Webhook } from "standardwebhooks";

const failFirst = Number(process.env.RECEIVER_FAIL_FIRST ?? "0");
let secret = null;
let verifiedCalls = 0;
const log = [];

const server = http.createServer((request, response) => {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    if (request.url === "/_control/secret" && request.method === "POST") {
      secret = body.trim();
      response.end("ok");
      return;
    }
    if (request.url === "/_control/log") {
      response.setHeader("content-type", "application/json");
      response.end(JSON.stringify(log));
      return;
    }
    let payload = null;
    let error = null;
    try {
      payload = new Webhook(secret).verify(body, request.headers);
    } catch (e) {
      error = String(e?.message ?? e);
    }
    const verified = error === null;
    let status = 400;
    if (verified) {
      verifiedCalls += 1;
      status = verifiedCalls <= failFirst ? 500 : 204;
    }
    log.push({
      path: request.url,
      id: request.headers["webhook-id"] ?? null,
      timestamp: request.headers["webhook-timestamp"] ?? null,
      verified,
      error,
      status,
      type: payload?.type ?? null,
      payload,
    });
    response.statusCode = status;
    response.end();
  });
});

server.listen(0, "127.0.0.1", () => {
  console.log(JSON.stringify({ port: server.address().port }));
});
