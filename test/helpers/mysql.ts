/**
 * A fresh MariaDB/MySQL database per suite, on the server the machine runs
 * (TERN_TEST_MYSQL, default mysql://root@127.0.0.1:3306), dropped when the suite ends: the
 * cluster's Database (test/support/node-process.ts).
 */
export { Database as TestDatabase, MYSQL_SERVER } from "../support/node-process.ts";
