from plaid.cli.main import main

raise SystemExit(main())
