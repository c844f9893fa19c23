from vidmod.cli.main import main

raise SystemExit(main())
