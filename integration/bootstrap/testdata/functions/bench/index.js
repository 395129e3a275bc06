// The smallest handler, for the overhead benchmarks.
exports.handler = async (event) => ({ statusCode: 200, body: event.body });
