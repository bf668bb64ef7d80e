from facemask.cli import main

raise SystemExit(main())
