from vidmod.cli import main

raise SystemExit(main())
