// PostGraphile v4, with @graphile/pg-aggregates and the connection filter
// plugin, answering the seed's `notice` question over the database that
// benches/notice_query.rs seeded: accounts with an oaopenid, some
// point_count rows and a user_status of 经纪人 or 新人, each with its counts
// of 聊天 and 投递邀约 rows.
//
// Prints one JSON line: rows and summed counts (so the bench can check the
// answer), the median single-request latency and the throughput of 8
// concurrent clients. Run by the bench (`node bench.js`, after `npm ci`);
// env DATABASE_URL, ROUNDS (25), REQUESTS (8 clients share them; 200),
// CLIENTS (8).

const http = require("http");
const { postgraphile } = require("postgraphile");
const ConnectionFilterPlugin = require("postgraphile-plugin-connection-filter");
const PgAggregatesPlugin = require("@graphile/pg-aggregates").default;

const NOTICE = `query notice {
  allAccounts(
    orderBy: PRIMARY_KEY_ASC
    filter: {
      oaopenid: { isNull: false }
      pointCountsByAccountAccount: { some: { id: { isNull: false } } }
      or: [{ userStatus: { equalTo: "经纪人" } }, { userStatus: { equalTo: "新人" } }]
    }
  ) {
    nodes {
      oaopenid
      chatnotice: pointCountsByAccountAccount(filter: { type: { equalTo: "聊天" } }) { totalCount }
      nonchatnotice: pointCountsByAccountAccount(filter: { type: { equalTo: "投递邀约" } }) { totalCount }
    }
  }
}`;

const databaseUrl = process.env.DATABASE_URL;
const rounds = Number(process.env.ROUNDS || 25);
const requests = Number(process.env.REQUESTS || 200);
const clients = Number(process.env.CLIENTS || 8);

async function ask(url) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query: NOTICE }),
  });
  return response.text();
}

function median(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function main() {
  if (!databaseUrl) throw new Error("DATABASE_URL is not set");
  const middleware = postgraphile(databaseUrl, "public", {
    appendPlugins: [ConnectionFilterPlugin, PgAggregatesPlugin],
    graphileBuildOptions: { connectionFilterRelations: true },
    disableQueryLog: true,
    retryOnInitFail: false,
    watchPg: false,
  });
  const server = http.createServer(middleware);
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}/graphql`;

  const first = JSON.parse(await ask(url));
  if (first.errors) throw new Error(JSON.stringify(first.errors));
  const nodes = first.data.allAccounts.nodes;
  const answer = {
    rows: nodes.length,
    chat: nodes.reduce((sum, n) => sum + n.chatnotice.totalCount, 0),
    job: nodes.reduce((sum, n) => sum + n.nonchatnotice.totalCount, 0),
  };

  const latencies = [];
  for (let i = 0; i < rounds; i++) {
    const started = process.hrtime.bigint();
    await ask(url);
    latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
  }

  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < requests) {
        next += 1;
        await ask(url);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;

  console.log(JSON.stringify({ ...answer, median_ms: median(latencies), requests, clients, seconds, per_second: requests / seconds }));
  server.close();
  await middleware.release();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
