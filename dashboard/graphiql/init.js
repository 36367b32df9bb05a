// GraphiQL on the embedded assets. The token is the dashboard's (session storage, same origin):
// sign in at / first, or add an `Authorization` header in GraphiQL's headers tab.
(function () {
  var token = sessionStorage.getItem('runflow.token');
  var headers = token ? { Authorization: 'Bearer ' + token } : {};
  var wsUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/graphql/ws';
  var fetcher = GraphiQL.createFetcher({
    url: '/graphql',
    subscriptionUrl: wsUrl,
    headers: headers,
    wsConnectionParams: token ? { Authorization: 'Bearer ' + token } : {},
  });
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, {
    fetcher: fetcher,
    defaultHeaders: token ? JSON.stringify(headers, null, 2) : undefined,
    defaultQuery: '# Runflow GraphQL API. Every root field takes `environment: STAGING | PRODUCTION`.\n{\n  viewer(environment: STAGING) { subject tenant role }\n}\n',
  }));
})();
